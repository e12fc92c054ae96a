#!/usr/bin/env bash
# Time `make opensearch` on fresh clones: empty Maven cache (every jar downloaded, node built),
# warm cache (node built from cached jars) and an already-built node, each --runs times;
# prints each run and the medians in markdown.
#
#   benchmarks/opensearch_startup.sh [--runs 3] [--port 9240]
#
# The Maven cache under test is a private folder (-Dmaven.repo.local), so ~/.m2 is neither
# used nor touched; each clone is of this repository's HEAD into a temporary folder.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUNS=3
PORT=9240
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--port P]" >&2; exit 2 ;;
  esac
done
WORK="$(mktemp -d)"
trap 'OPENSEARCH_PORT=$PORT bash "$WORK/clone/scripts/opensearch" stop >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
M2="$WORK/m2"

# one timed `make opensearch` in $WORK/clone; $1 = fresh (new clone) or reuse (built clone)
timed() {
  if [ "$1" = fresh ]; then
    rm -rf "$WORK/clone" && git clone -q "$ROOT" "$WORK/clone"
  fi
  local start end
  start=$(date +%s.%N)
  (cd "$WORK/clone" && MAVEN_OPTS="-Dmaven.repo.local=$M2" OPENSEARCH_PORT=$PORT \
    make opensearch >"$WORK/make.log" 2>&1) || { tail -n 30 "$WORK/make.log" >&2; exit 1; }
  end=$(date +%s.%N)
  OPENSEARCH_PORT=$PORT bash "$WORK/clone/scripts/opensearch" stop >/dev/null
  python3 -c "print(f'{$end - $start:.1f}')"
}

declare -a cold warm built
for i in $(seq "$RUNS"); do
  rm -rf "$M2"
  cold+=("$(timed fresh)")
  warm+=("$(timed fresh)")
  built+=("$(timed reuse)")
  echo "run $i: cold ${cold[-1]} s, warm ${warm[-1]} s, built ${built[-1]} s (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "| make opensearch on a fresh clone ($RUNS runs) | median s | runs s |"
echo "| --- | --- | --- |"
echo "| empty Maven cache: download, build, start, green, smoke | $(median "${cold[@]}") | ${cold[*]} |"
echo "| warm Maven cache: build, start, green, smoke | $(median "${warm[@]}") | ${warm[*]} |"
echo "| node already built: start, green, smoke | $(median "${built[@]}") | ${built[*]} |"
