#!/usr/bin/env bash
# One command: build (once, cached) a synthetic catalogue, serve it, load it with Locust
# headless, write CSVs under out/load/ and print throughput, p50/p95/p99 and errors last.
#
#   load-tests/run.sh                       # 100k products, 20 users, 60 s, 2 server processes
#   USERS=50 WAIT_MAX=0 load-tests/run.sh   # users without think time: saturation
#   N=1000000 SERVER_WORKERS=1 load-tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100000}
USERS=${USERS:-20}
SPAWN_RATE=${SPAWN_RATE:-5}
DURATION=${DURATION:-60s}
WARMUP=${WARMUP:-60s}
SERVER_WORKERS=${SERVER_WORKERS:-2}
WAIT_MIN=${WAIT_MIN:-0.5}
WAIT_MAX=${WAIT_MAX:-1.5}
PORT=${PORT:-8765}
VENV=${VENV:-.venv}
OUT=out/load
DATA=out/bench/synth-$N-d512

"$VENV/bin/python" benchmarks/query_shapes.py --n "$N" --build-only
mkdir -p "$OUT"
export LOOKALIKE_DATA_DIR=$DATA LOOKALIKE_TEXT_MODEL=none LOOKALIKE_HOST=127.0.0.1
export LOOKALIKE_PORT=$PORT LOAD_N=$N LOAD_WAIT_MIN=$WAIT_MIN LOAD_WAIT_MAX=$WAIT_MAX
if [ "$SERVER_WORKERS" = 1 ]; then
  "$VENV/bin/lookalike" serve >"$OUT/server.log" 2>&1 &
else  # the same app, several processes (each holds the catalogue in RAM and its own graph)
  "$VENV/bin/uvicorn" --factory lookalike.api.app:create_app --host 127.0.0.1 --port "$PORT" \
    --workers "$SERVER_WORKERS" --log-level warning >"$OUT/server.log" 2>&1 &
fi
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true' EXIT

for _ in $(seq 1 240); do
  curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$OUT/server.log"; exit 1; }
  sleep 0.5
done
curl -fs "http://127.0.0.1:$PORT/health"; echo

LOCUST=("$VENV/bin/locust" -f load-tests/locustfile.py --headless --host "http://127.0.0.1:$PORT")
# Warm-up, not recorded: loads the catalogue snapshot and builds the HNSW graph per process.
"${LOCUST[@]}" -u 4 -r 4 -t "$WARMUP" --only-summary >"$OUT/warmup.log" 2>&1 || true
NAME="$OUT/n$N-u$USERS-w$SERVER_WORKERS"
"${LOCUST[@]}" -u "$USERS" -r "$SPAWN_RATE" -t "$DURATION" --csv "$NAME" --only-summary \
  >"$NAME.log" 2>&1 || true  # locust exits 1 when any request failed; the table says so

RSS=$(ps -o rss= --ppid "$SERVER" -p "$SERVER" | awk '{s += $1} END {printf "%.0f", s / 1024}')
"$VENV/bin/python" load-tests/summary.py "$NAME" \
  "$N products, $USERS users (think time ${WAIT_MIN}-${WAIT_MAX} s), $DURATION after a" \
  "$WARMUP warm-up, $SERVER_WORKERS server process(es), server RSS ${RSS} MiB; CSV: ${NAME}_stats.csv"
