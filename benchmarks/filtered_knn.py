"""Filtered kNN within one category: exact gather-and-score against per-value partitions.

    nice -n 10 python benchmarks/filtered_knn.py --n 200000
    nice -n 10 python benchmarks/filtered_knn.py --n 1000000 --queries 100

Synthetic clustered unit vectors (the generator of ``engine_bench.py``), loaded straight into
a ``VectorSpace`` (no SQLite, no graph: narrow filters never reach the graph), with a skewed
category field: one value holds 1/8 of the rows, one 1%, the rest 86.5% over six values.
For each query, in interleaved order, the two paths of ``VectorSpace.knn``: the exact scan of
the filtered rows (what the engine did before) and the partitions (8-bit contiguous codes per
category, re-scored exactly). Shapes: filtered kNN top-50, and the candidate window of
sort-by-similar (top-1000 within the category, what ``reranker.service`` asks the engine
for). One BLAS/faiss thread, as the API runs. p50/p95 in ms and recall against exact.

    nice -n 10 python benchmarks/filtered_knn.py --engine --n 60000 --dim 256

runs the comparison end to end instead: a catalogue upserted into ``EmbeddedEngine``
(defaults: background builds, faiss's own thread settings), ``engine.knn`` within one of the
eight categories of ``engine_bench.py``, against a second engine on the same directory with
``partition_fields=()``.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from engine_bench import CATEGORIES, Catalogue, rss_mb  # noqa: E402

from lookalike.engines.embedded import EmbeddedEngine  # noqa: E402
from lookalike.engines.embedded.vectors import AnnPolicy, VectorSpace  # noqa: E402
from lookalike.filters import And, Range, Term  # noqa: E402

SHARES = {"big": 0.125, "small": 0.01}  # the two measured values; six others share the rest


def categories(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    rest = (1.0 - sum(SHARES.values())) / 6
    names = [*SHARES, *(f"other{i}" for i in range(6))]
    p = [*SHARES.values(), *([rest] * 6)]
    labels = rng.choice(len(names), n, p=p)
    return {f"category={name}": np.flatnonzero(labels == i) for i, name in enumerate(names)}


def engine_check(n: int, dim: int, count: int) -> None:
    """End to end through ``EmbeddedEngine.knn``: partitions against the exact scan."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        with EmbeddedEngine(Path(folder), ann_threshold=n // 3) as engine:
            for docs in Catalogue(n, dim).batches(10_000):
                engine.upsert(docs)
            upsert_s = time.perf_counter() - t0
            cat = Catalogue(n, dim)
            cat.rng = np.random.default_rng(3)
            queries = cat.vectors(count)
            flt = Term("category", CATEGORIES[2])
            engine.knn(queries[0], 50, filters=flt)  # starts the graph and partition builds
            engine.snapshot.spaces["image"].wait()
            opts = {"ann_threshold": n // 3, "partition_fields": ()}
            with EmbeddedEngine(Path(folder), **opts) as ref:
                ref.knn(queries[0], 50, filters=flt)
                ref.snapshot.spaces["image"].wait()
                agree, t_part, t_exact = [], [], []
                for i, q in enumerate(queries):
                    for f in (flt, And((flt, Range("price", lt=200)))):
                        pair = [(engine, t_part), (ref, t_exact)]
                        ids = []
                        for eng, times in pair if i % 2 else pair[::-1]:
                            t = time.perf_counter()
                            ids.append({h.id for h in eng.knn(q, 50, filters=f)})
                            times.append(time.perf_counter() - t)
                        agree.append(len(ids[0] & ids[1]) / 50)
        pp = np.percentile(np.array(t_part) * 1000, [50, 95])
        pe = np.percentile(np.array(t_exact) * 1000, [50, 95])
        print(
            f"engine.knn top-50, n={n:,} x {dim}-d (upsert {upsert_s:.0f} s), one category"
            f" (1/8), alone and with a price range, {2 * count} queries:\n"
            f"| partitions p50 / p95 | exact p50 / p95 | recall@50 |\n| --- | --- | --- |\n"
            f"| {pp[0]:.1f} / {pp[1]:.1f} ms | {pe[0]:.1f} / {pe[1]:.1f} ms"
            f" | {np.mean(agree):.4f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--codes", default="sq8", choices=["sq8", "pq4"])
    ap.add_argument("--engine", action="store_true", help="end to end through EmbeddedEngine")
    args = ap.parse_args()
    n, dim = args.n, args.dim
    if args.engine:
        engine_check(n, dim, args.queries)
        return
    cat = Catalogue(n, dim)
    space = VectorSpace(
        "image",
        "bench-clip@1",
        AnnPolicy(threshold=0, partition_min_rows=1000, partition_codes=args.codes),
    )
    t0 = time.perf_counter()
    space.reserve_rows(n)
    for start in range(0, n, 50_000):
        m = min(50_000, n - start)
        space.load_block(np.arange(start, start + m), cat.vectors(m))
    load_s = time.perf_counter() - t0
    members = categories(n, np.random.default_rng(5))
    t0 = time.perf_counter()
    with threadpool_limits(1, user_api="blas"):
        space.build_partitions(members, n, threading.RLock(), wait=True)
    build_s = time.perf_counter() - t0
    assert space.parts is not None
    cat.rng = np.random.default_rng(11)
    queries = cat.vectors(args.queries)
    faiss.omp_set_num_threads(1)
    lines = [
        f"filtered kNN, n={n:,} x {dim}-d, {args.queries} queries, one BLAS/faiss thread,"
        f" partition codes {args.codes}",
        f"vectors generated + loaded {load_s:.1f} s; partitions built {build_s:.1f} s "
        f"({space.parts.nbytes / 2**20:,.0f} MiB of codes)",
        "| filter (rows) | k | exact p50 / p95 | partitions p50 / p95 | recall@k | recall@50 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    with threadpool_limits(1, user_api="blas"):
        for name in SHARES:
            tok = f"category={name}"
            cand = np.zeros(n, dtype=bool)
            cand[members[tok]] = True
            for k in (50, 1000):
                t_exact, t_part, recall, top50 = [], [], [], []
                for i, q in enumerate(queries):
                    order = (0, 1) if i % 2 else (1, 0)
                    res: dict[int, np.ndarray] = {}
                    for which in order:
                        t = time.perf_counter()
                        if which == 0:
                            res[0] = space.exact(q, cand, k)[0]
                        else:
                            res[1] = space.knn(q, cand, k, n, (tok,))[0]
                        (t_exact if which == 0 else t_part).append(time.perf_counter() - t)
                    recall.append(len(set(res[0]) & set(res[1])) / len(res[0]))
                    top50.append(len(set(res[0][:50]) & set(res[1][:50])) / 50)
                pe = np.percentile(np.array(t_exact[5:]) * 1000, [50, 95])
                pp = np.percentile(np.array(t_part[5:]) * 1000, [50, 95])
                lines.append(
                    f"| {name} ({len(members[tok]):,}) | {k} | {pe[0]:.1f} / {pe[1]:.1f} ms"
                    f" | {pp[0]:.1f} / {pp[1]:.1f} ms | {np.mean(recall):.4f}"
                    f" | {np.mean(top50):.4f} |"
                )
    cur, peak = rss_mb()
    lines.append(f"RSS now / peak: {cur:,.0f} / {peak:,.0f} MiB")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
