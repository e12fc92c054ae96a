"""HNSW build settings against recall: one graph built with the given M, efConstruction and
storage over a built catalogue's image vectors, then recall@50 and latency per ef.

    python benchmarks/ann_tuning.py --data-dir out/bench/synth-1000000-d512 --m 32 \
        --ef-construction 128 --storage flat --ef 128,256,512,1024

The catalogue is one ``benchmarks/query_shapes.py`` built (its cache folder). The graph is
built with ``AnnIndex.build`` exactly as the engine builds its own, but kept in this process
only (the catalogue's persisted graph is left alone). Queries are the query_shapes kind (new
vectors around the catalogue's cluster centres); recall@50 is against an exact scan of the
same matrix, the whole ef queue re-scored exactly as the engine does. One BLAS thread.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from engine_bench import Catalogue, rss_mb  # noqa: E402

from lookalike.engines.embedded import EmbeddedEngine  # noqa: E402
from lookalike.engines.embedded.ann import AnnIndex  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, required=True, help="a query_shapes cache folder")
    ap.add_argument("--m", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, default=128)
    ap.add_argument("--storage", choices=["sq8", "flat"], default="sq8")
    ap.add_argument("--ef", type=lambda v: [int(x) for x in v.split(",")], default=[256])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=50)
    args = ap.parse_args()
    engine = EmbeddedEngine(args.data_dir, ann_background=False)
    engine.count()
    with engine.snapshot.lock:
        sp = engine.snapshot.ensure("image")
        assert sp is not None
        n = engine.snapshot.catalog.n
        dim = sp.width
        matrix = sp.matrix[:n, :dim]
    rows = np.arange(n)
    t0 = time.perf_counter()
    index = AnnIndex.build(
        lambda r: matrix[r], rows, dim, args.m, args.ef_construction, args.storage
    )
    build_s = time.perf_counter() - t0
    cat = Catalogue(n, dim)
    cat.rng = np.random.default_rng(13)
    queries = cat.vectors(args.queries)
    k = args.k
    with threadpool_limits(1):
        exact = []
        for q in queries:
            scores = matrix @ q
            exact.append(set(np.argpartition(-scores, k)[:k].tolist()))
        print(
            f"\nHNSW M={args.m} efConstruction={args.ef_construction} storage={args.storage},"
            f" n={n:,} x {dim}-d: build {build_s:.0f} s (OMP threads {os.cpu_count()})"
        )
        print("| ef | p50 / p95 ms (search + exact re-score) | recall@50 |\n| --- | --- | --- |")
        for ef in args.ef:
            times, recall = [], []
            for q, truth in zip(queries, exact, strict=True):
                t = time.perf_counter()
                found = index.search(q, ef, ef, None)
                best = found[np.argsort(-(matrix[found] @ q))[:k]]
                times.append((time.perf_counter() - t) * 1000)
                recall.append(len(truth & set(best.tolist())) / k)
            p50, p95 = np.percentile(times, [50, 95])
            print(f"| {ef} | {p50:.2f} / {p95:.2f} | {np.mean(recall):.3f} |")
    print(f"RSS now / peak: {rss_mb()[0]:,.0f} / {rss_mb()[1]:,.0f} MiB")
    engine.close()


if __name__ == "__main__":
    main()
