"""This engine against its peers on one synthetic catalogue and the same query shapes, in one run.

    python benchmarks/peers.py --n 100000
    python benchmarks/peers.py --n 1000000 --cache /work/bench --read-only-cache \
        --peers lookalike,sqlite_numpy,lancedb

The catalogue is ``query_shapes.py``'s (``engine_bench.Catalogue`` + the attribute space of
``rerank_bench.py``); the peers index the same products, regenerated column-wise with the
same seed and checked against this engine's (``peer_engines/columns.py``). The queries are
``query_shapes.measure``'s inputs: (1) keyword + category + price filters, BM25 window of
1000 re-scored against 3 anchors (weights 2, 1, 1), top 10; (2) more like this: kNN top-50 of
one product's vector, itself excluded; (3) sort by similar in a 1/8 category: kNN top-50 of
the anchors' weighted mean vector within the category, anchors excluded; (4) broad-filter kNN
top-50 (colour in 5 of 20). Each peer lives in its own process (clean RSS) with one BLAS
thread; after 20 warm-up queries per shape the driver sends rounds of queries to the peers
in turn, so machine load falls on all alike. Recall@50 is against exact numpy answers over the
same vectors and filter; overlap@10 against this engine's top 10. Needs the ``peers`` extra
(a missing package fails only that peer). Figures last, as markdown.
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing as mp
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from engine_bench import rss_mb as rss  # noqa: E402
from peer_engines.base import (  # noqa: E402
    CATEGORIES,
    COLORS,
    KeywordQuery,
    KnnQuery,
    Setup,
    pid,
    row_of,
    unit_mean,
)
from peer_engines.columns import build_columns, load  # noqa: E402

PEERS = ("lookalike", "sqlite_numpy", "lancedb", "txtai", "qdrant", "opensearch")
SHAPES = {
    "keyword": "keyword + 2 filters + re-rank 3 anchors (window 1000, top 10)",
    "mlt": "more like this, kNN top-50",
    "category": "sort by similar, 1/8 category, kNN top-50",
    "broad": "broad filter (colour 5/20) kNN top-50",
}
WARMUP = 20


def make_queries(n: int, dim: int, q: int, columns: dict[str, np.ndarray]) -> dict[str, list]:
    """``query_shapes.measure``'s inputs, drawn in its order, as every peer's queries."""
    from engine_bench import Catalogue

    rng = np.random.default_rng(7)
    cat = Catalogue(n, dim)
    cat.rng = np.random.default_rng(11)
    texts = [f"{rng.choice(cat.vocab[:10])} {rng.choice(cat.vocab[30:500])}" for _ in range(q)]
    prices = [float(rng.uniform(150, 450)) for _ in range(q)]
    anchors = [tuple(int(j) for j in rng.integers(0, n, 3)) for _ in range(q)]
    singles = [int(j) for j in rng.integers(0, n, q)]
    vectors = cat.vectors(q)
    weights = (2.0, 1.0, 1.0)
    vec = columns["vectors"]
    return {
        "keyword": [
            KeywordQuery(
                texts[i], CATEGORIES[i % 8], prices[i], tuple(pid(a) for a in anchors[i]), weights
            )
            for i in range(q)
        ],
        "mlt": [
            KnnQuery(np.array(vec[singles[i]]), 50, exclude=(pid(singles[i]),)) for i in range(q)
        ],
        "category": [
            KnnQuery(
                unit_mean(vec[list(anchors[i])], np.array(weights)).astype(np.float32),
                50,
                category=CATEGORIES[i % 8],
                exclude=tuple(dict.fromkeys(pid(a) for a in anchors[i])),
            )
            for i in range(q)
        ],
        "broad": [KnnQuery(vectors[i], 50, colors=tuple(COLORS[:5])) for i in range(q)],
    }


def exact_answers(
    queries: list[KnnQuery], columns: dict[str, np.ndarray], chunk: int = 32_768
) -> list[list[str]]:
    """The true top-k of each kNN query: numpy over the same vectors and the same filter
    (all queries against one block of rows at a time, keeping each query's best k)."""
    vec, n = columns["vectors"], len(columns["vectors"])
    k = max(q.k for q in queries)
    mat = np.stack([q.vector for q in queries]).astype(np.float32)
    best = np.full((len(queries), k), -np.inf, np.float32)
    rows = np.zeros((len(queries), k), np.int64)
    excluded = [np.array(sorted(row_of(a) for a in q.exclude), np.int64) for q in queries]
    wanted = [
        None if q.colors is None else np.array([COLORS.index(c) for c in q.colors]) for q in queries
    ]
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        scores = np.asarray(vec[lo:hi]) @ mat.T  # [rows, queries]
        cat, col = columns["category"][lo:hi], columns["color"][lo:hi]
        for j, q in enumerate(queries):
            s = scores[:, j].copy()
            if q.category is not None:
                s[cat != CATEGORIES.index(q.category)] = -np.inf
            colors = wanted[j]
            if colors is not None:
                s[~np.isin(col, colors)] = -np.inf
            ex = excluded[j]
            ex = ex[(ex >= lo) & (ex < hi)]
            s[ex - lo] = -np.inf
            top = np.argpartition(-s, k - 1)[:k]
            pool_s = np.concatenate([best[j], s[top]])
            pool_r = np.concatenate([rows[j], top + lo])
            keep = np.lexsort((pool_r, -pool_s))[:k]
            best[j], rows[j] = pool_s[keep], pool_r[keep]
    return [
        [pid(int(r)) for r, v in zip(rows[j], best[j], strict=True) if np.isfinite(v)][: q.k]
        for j, q in enumerate(queries)
    ]


# -- the peer processes ----------------------------------------------------------------------
def serve(module: str, setup: Setup, conn: Connection) -> None:
    """A peer's process: build, then answer ``(shape, indices)`` rounds with timings and ids."""
    with threadpool_limits(1):
        try:
            peer = importlib.import_module(f"peer_engines.{module}").PEER(setup)
            t0 = time.perf_counter()
            built = peer.build()
            load_s = time.perf_counter() - t0
            ready = ("ready", peer.name, peer.detail, built, peer.cached, peer.slow, load_s, rss())
            conn.send(ready)
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on without this peer
            conn.send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
            return
        queries: dict[str, list[Any]] = {}
        while True:
            msg = conn.recv()
            if msg[0] == "queries":
                queries = msg[1]
                conn.send("ok")
            elif msg[0] == "run":
                _, shape, indices = msg
                call = peer.keyword_rerank if shape == "keyword" else peer.knn
                out = []
                try:
                    for i in indices:
                        t = time.perf_counter()
                        ids = call(queries[shape][i])
                        out.append(((time.perf_counter() - t) * 1000, ids))
                    conn.send(("ok", out))
                except Exception as exc:  # noqa: BLE001
                    conn.send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
            elif msg[0] == "rss":
                conn.send(rss())
            else:
                peer.close()
                conn.send("bye")
                return


@dataclass
class Running:
    module: str
    proc: Any
    conn: Connection
    name: str = ""
    detail: str = ""
    build_s: float | None = None
    cached: bool = False
    slow: bool = False
    load_s: float = 0.0
    rss_ready: float = 0.0
    failed: dict[str, str] = field(default_factory=dict)
    times: dict[str, list[float]] = field(default_factory=dict)
    answers: dict[str, dict[int, list[str]]] = field(default_factory=dict)
    rss_end: tuple[float, float] = (0.0, 0.0)


def start(module: str, setup: Setup, timeout: float) -> Running | str:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=serve, args=(module, setup, child), daemon=True)
    proc.start()
    if not parent.poll(timeout):
        proc.kill()
        return f"no answer within {timeout:.0f} s of building"
    msg = parent.recv()
    if msg[0] == "error":
        proc.join(5)
        print(msg[2], file=sys.stderr)
        return str(msg[1])
    _, name, detail, built, cached, slow, load_s, (cur, _peak) = msg
    return Running(module, proc, parent, name, detail, built, cached, slow, load_s, cur)


def ask(peer: Running, msg: tuple[Any, ...], timeout: float = 600.0) -> Any:
    peer.conn.send(msg)
    if not peer.conn.poll(timeout):
        raise TimeoutError(f"{peer.module}: no answer in {timeout:.0f} s")
    return peer.conn.recv()


def skip_reason(module: str, n: int) -> str | None:
    if module == "qdrant" and n > 200_000:
        return (
            "Qdrant local mode keeps points in Python dicts and scans them with numpy per query"
            " (no HNSW, no payload index): 1M points do not fit the memory budget or time"
        )
    if module == "opensearch" and not os.environ.get("OPENSEARCH_URL"):
        return "OPENSEARCH_URL is not set"
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--round", type=int, default=10, help="queries per peer per turn")
    ap.add_argument(
        "--slow-queries", type=int, default=20, help="queries per shape for peers that take seconds"
    )
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--cache", type=Path, default=ROOT / "out" / "bench", help="this engine's")
    ap.add_argument("--read-only-cache", action="store_true", help="never build into --cache")
    ap.add_argument("--work", type=Path, default=ROOT / "out" / "peers", help="peers' indexes")
    ap.add_argument("--build-timeout", type=float, default=3600)
    ap.add_argument("--build-only", action="store_true", help="build every peer's index, stop")
    args = ap.parse_args()
    modules = [m for m in args.peers.split(",") if m]
    notes: list[str] = []
    t0 = time.perf_counter()
    folder = build_columns(args.n, args.dim, args.work / f"columns-{args.n}-d{args.dim}")
    cols = load(folder)
    with threadpool_limits(1):
        queries = make_queries(args.n, args.dim, args.queries, cols)
        exact = {s: exact_answers(queries[s], cols) for s in ("mlt", "category", "broad")}
    del cols  # unmap the matrix: the driver holds only the queries and the answers
    print(f"columns, queries, exact answers: {time.perf_counter() - t0:.1f} s", flush=True)

    running: list[Running] = []
    for module in modules:
        reason = skip_reason(module, args.n)
        if reason:
            notes.append(f"{module}: skipped: {reason}")
            print(notes[-1], flush=True)
            continue
        setup = Setup(
            args.n,
            args.dim,
            folder,
            args.work / f"{module}-{args.n}-d{args.dim}",
            {"cache": str(args.cache), "read_only": args.read_only_cache},
        )
        setup.workdir.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        got = start(module, setup, args.build_timeout)
        if isinstance(got, str):
            notes.append(f"{module}: failed: {got}")
        else:
            running.append(got)
            built = "reused" if got.build_s is None else f"built {got.build_s:.1f} s"
            if got.cached:
                built += " (by an earlier run, reused)"
            notes.append(
                f"{got.name}: {got.detail}; index {built}, process ready in"
                f" {time.perf_counter() - t:.1f} s, RSS {got.rss_ready:,.0f} MiB"
            )
        print(notes[-1], flush=True)
        if args.build_only and not isinstance(got, str):
            ask(got, ("close",))
            got.proc.join(10)
            running.remove(got)
    if args.build_only:
        return
    for peer in running:
        ask(peer, ("queries", queries))

    def turn(peer: Running, shape: str, indices: list[int], keep: bool) -> None:
        if peer.slow:
            indices = [i for i in indices if i < args.slow_queries] if keep else indices[:5]
        if shape in peer.failed or not indices:
            return
        reply = ask(peer, ("run", shape, indices))
        if reply[0] == "error":
            peer.failed[shape] = reply[1]
            print(f"{peer.name} {shape}: {reply[1]}\n{reply[2]}", file=sys.stderr, flush=True)
            return
        if keep:
            for i, (ms, ids) in zip(indices, reply[1], strict=True):
                peer.times.setdefault(shape, []).append(ms)
                peer.answers.setdefault(shape, {})[i] = ids

    with threadpool_limits(1):
        for shape in SHAPES:  # warm-up, untimed
            for peer in running:
                turn(peer, shape, list(range(min(WARMUP, args.queries))), keep=False)
        t = time.perf_counter()
        for r, lo in enumerate(range(0, args.queries, args.round)):
            indices = list(range(lo, min(lo + args.round, args.queries)))
            for s, shape in enumerate(SHAPES):
                k = (r + s) % max(1, len(running))  # rotate who goes first
                for peer in running[k:] + running[:k]:
                    turn(peer, shape, indices, keep=True)
        print(f"timed rounds: {time.perf_counter() - t:.1f} s", flush=True)
    for peer in running:
        peer.rss_end = ask(peer, ("rss",))
        ask(peer, ("close",))
        peer.proc.join(10)
    report(args, running, exact, notes)


def report(
    args: argparse.Namespace,
    running: list[Running],
    exact: dict[str, list[list[str]]],
    notes: list[str],
) -> None:
    ours = next((p for p in running if p.module == "lookalike"), None)
    print(
        f"\npeers side by side, n={args.n:,}, dim={args.dim}, {args.queries} queries per shape"
        f" (+{WARMUP} warm-up), one BLAS thread, interleaved rounds of {args.round};"
        f" load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    for line in notes:
        print(f"- {line}")
    names = [p.name for p in running]
    print("\n| shape | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for shape, label in SHAPES.items():
        cells = []
        for p in running:
            if shape in p.failed or shape not in p.times:
                cells.append(f"failed: {p.failed.get(shape, 'no answer')}")
                continue
            p50, p95 = np.percentile(p.times[shape], [50, 95])
            parts = [f"{p50:.1f} / {p95:.1f} ms"]
            if p.slow and len(p.times[shape]) < args.queries:
                parts.append(f"{len(p.times[shape])} queries")
            if shape in exact:
                got = p.answers[shape]
                e = exact[shape]
                rec = np.mean([len(set(got[i]) & set(e[i])) / max(1, len(e[i])) for i in got])
                parts.append(f"R@50 {rec:.3f}")
            if ours is not None and p is not ours and shape in ours.answers:
                theirs = ours.answers[shape]
                mine = p.answers[shape]
                ov = np.mean([len(set(mine[i][:10]) & set(theirs[i][:10])) / 10 for i in mine])
                parts.append(f"ov@10 {ov:.2f}")
            cells.append("; ".join(parts))
        print(f"| {label} | " + " | ".join(cells) + " |")
    build = [
        "?" if p.build_s is None else f"{p.build_s:.0f} s" + (" (cached)" if p.cached else "")
        for p in running
    ]
    print("| index build | " + " | ".join(build) + " |")
    print(
        "| process ready (load/build) | " + " | ".join(f"{p.load_s:.1f} s" for p in running) + " |"
    )
    print(
        "| RSS after queries / peak | "
        + " | ".join(f"{p.rss_end[0]:,.0f} / {p.rss_end[1]:,.0f} MiB" for p in running)
        + " |"
    )
    print("\np50 / p95 ms; R@50: recall@50 against exact; ov@10: overlap@10 with this engine")


if __name__ == "__main__":
    main()
