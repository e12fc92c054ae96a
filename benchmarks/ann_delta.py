"""kNN after rows change: a delta HNSW graph of the stale rows against scanning them exactly.

    nice -n 10 python benchmarks/ann_delta.py --n 200000

A ``VectorSpace`` holds the synthetic clusters of ``engine_bench.py`` (512-d) and builds its
main graph (HNSW-SQ8, M=32, as the engine does; faiss threads at their default for the
build only). Then rows change in steps up to ``--levels`` (shares of n, cumulative): half
of the changes give an existing row a new vector (one in ten of those re-changes a row
changed before, so the delta holds outdated entries to hide), half add new rows. After each
step the delta takes the new rows (``sync_delta``, timed), and 100 fresh queries are timed
query by query alternately through the delta and through the old path (the delta switched
off: every stale row scanned exactly), one BLAS / faiss thread: kNN top-50, unfiltered and
with a broad filter (a random half of the rows). Recall@50 is against the exact scan of the
same rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from engine_bench import Catalogue  # noqa: E402

from lookalike.engines.embedded.vectors import AnnPolicy, VectorSpace  # noqa: E402

K = 50


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.array(xs) * 1e3, p))


def delta_mib(space: VectorSpace) -> float:
    """Codes plus neighbour lists of the delta graph (what it holds privately), MiB."""
    delta = space.delta
    if delta is None:
        return 0.0
    index = delta.index
    codes = faiss.downcast_index(index.storage).codes.size()
    links = index.hnsw.neighbors.size() * 4 + index.hnsw.levels.size() * 4
    return (codes + links + delta.rows.nbytes + delta.valid.nbytes) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--levels", default="0.0025,0.005,0.01,0.02,0.05,0.09")
    args = ap.parse_args()
    n, dim = args.n, args.dim
    levels = [float(x) for x in args.levels.split(",")]
    cat = Catalogue(n, dim)
    rng = np.random.default_rng(3)
    space = VectorSpace("image", "bench-clip@1", AnnPolicy(threshold=0, delta_min_rows=0))
    space.policy.background = False  # the benchmark times the delta adds itself
    space.reserve_rows(int(n * (1 + max(levels))) + 1)
    for start in range(0, n, 50_000):
        m = min(50_000, n - start)
        space.load_block(np.arange(start, start + m), cat.vectors(m))
    t0 = time.perf_counter()
    space.build_ann(np.arange(n), threading.RLock(), wait=True)
    print(f"main graph over {n:,} rows: {time.perf_counter() - t0:.1f} s", flush=True)
    print(f"load average {os.getloadavg()}", flush=True)
    faiss.omp_set_num_threads(1)

    rows_total = n
    changed: list[int] = []
    done = 0
    header = (
        "| stale rows (share) | delta entries (valid), MiB | delta adds | filter | "
        "exact-scan path p50 / p95 | delta p50 / p95 | recall@50 exact path / delta | "
        "stale rows of the true top-50 found, delta |"
    )
    print(header)
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for level in levels:
        target = int(level * n)
        todo = target - done
        half = todo // 2
        # existing rows with new vectors: mostly first changes, one in ten again
        again = min(half // 10, len(changed))
        fresh = rng.choice(n, half - again, replace=False)
        rows = np.concatenate([fresh, rng.choice(changed, again) if again else []]).astype(int)
        new = np.arange(rows_total, rows_total + todo - half)
        rows_total += len(new)
        vecs = cat.vectors(len(rows) + len(new))
        for row, vec in zip([*rows.tolist(), *new.tolist()], vecs, strict=True):
            space.set(row, vec)
        changed.extend(rows.tolist())
        done = target
        t0 = time.perf_counter()
        with threadpool_limits(1, user_api="blas"):
            space.sync_delta()
        add_s = time.perf_counter() - t0
        delta = space.delta
        assert delta is not None
        stale = int(np.count_nonzero(space._stale[:rows_total] & space.has(rows_total)))
        queries = cat.vectors(args.queries)
        allc = space.has(rows_total)
        half_mask = allc & (np.random.default_rng(9).random(rows_total) < 0.5)
        for label, cand in (("none", allc), ("1/2 of rows", half_mask)):
            total = int(np.count_nonzero(allc))
            times: dict[str, list[float]] = {"exact": [], "delta": []}
            recall: dict[str, list[float]] = {"exact": [], "delta": []}
            stale_found: list[float] = []
            stale_mask = space._stale[:rows_total]
            with threadpool_limits(1, user_api="blas"):
                for i, q in enumerate(queries):
                    truth = set(space.exact(q, cand, K)[0].tolist())
                    order = ("exact", "delta") if i % 2 == 0 else ("delta", "exact")
                    for path in order:
                        saved = space.delta
                        if path == "exact":
                            space.delta = None  # the old path: every stale row scanned exactly
                        t = time.perf_counter()
                        got, _ = space.knn(q, cand, K, total)
                        times[path].append(time.perf_counter() - t)
                        space.delta = saved
                        recall[path].append(len(truth & set(got.tolist())) / K)
                        wanted = {r for r in truth if stale_mask[r]}
                        if path == "delta" and wanted:
                            stale_found.append(len(wanted & set(got.tolist())) / len(wanted))
            print(
                f"| {stale:,} ({stale / n:.2%}) | {delta.size:,} ({delta.live:,}), "
                f"{delta_mib(space):.1f} | "
                f"{add_s:.2f} s ({todo / max(add_s, 1e-9):,.0f} rows/s) | {label} | "
                f"{pct(times['exact'], 50):.2f} / {pct(times['exact'], 95):.2f} ms | "
                f"{pct(times['delta'], 50):.2f} / {pct(times['delta'], 95):.2f} ms | "
                f"{np.mean(recall['exact']):.3f} / {np.mean(recall['delta']):.3f} | "
                f"{np.mean(stale_found) if stale_found else float('nan'):.4f} |",
                flush=True,
            )
    print(f"load average {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
