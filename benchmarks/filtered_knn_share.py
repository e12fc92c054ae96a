"""Filtered kNN at 1M by the filter's share of rows: the graph against the exact scan.

    python benchmarks/filtered_knn_share.py DATA_DIR [queries]

DATA_DIR is a built catalogue with its graph persisted (``query_shapes.py``). For colour
filters keeping 1, 2, 4 and 5 of the 20 colours (5-25% of the rows), kNN top-50 of
product vectors through ``EmbeddedEngine.knn`` with the default policy, and with every
filter under ``ann_min_selectivity`` scanned exactly (the rule before ``GRAPH_MIN_ROWS``),
alternated query by query in one process; recall@50 against numpy's exact answer.
"""

import sys
import time

sys.path[:0] = ["."]
import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from lookalike.engines.embedded import EmbeddedEngine, vectors  # noqa: E402
from lookalike.engines.embedded.filtering import compile_filter  # noqa: E402
from lookalike.filters import Terms  # noqa: E402

data = sys.argv[1]
q = int(sys.argv[2]) if len(sys.argv) > 2 else 100
engine = EmbeddedEngine(data, ann_background=False)
engine.knn(np.ones(512, np.float32), 5)
space, cat = engine.snapshot.spaces["image"], engine.snapshot.catalog
matrix = space.matrix[: cat.n]
rng = np.random.default_rng(3)
queries = [np.asarray(matrix[r]) for r in rng.integers(0, cat.n, q)]
graph_min = vectors.GRAPH_MIN_ROWS
print(f"{cat.n:,} rows; GRAPH_MIN_ROWS {graph_min:,}; p50 / p95 ms, recall@50")
print("| colours (share) | rows allowed | default policy | exact below min_selectivity |")
print("| --- | --- | --- | --- |")
with threadpool_limits(1, user_api="blas"):
    for colours in (1, 2, 4, 5):
        flt = Terms("color", tuple(f"colour{i}" for i in range(colours)))
        mask = cat.mask(compile_filter(flt))
        res: dict[str, tuple[list[float], list[float]]] = {"default": ([], []), "exact": ([], [])}
        for i, v in enumerate(queries):
            s = matrix @ v
            s[~mask] = -np.inf
            truth = set(np.argpartition(-s, 50)[:50].tolist())
            for name in ("default", "exact") if i % 2 else ("exact", "default"):
                vectors.GRAPH_MIN_ROWS = graph_min if name == "default" else 1 << 62
                t = time.perf_counter()
                hits = engine.knn(v, 50, flt)
                res[name][0].append((time.perf_counter() - t) * 1e3)
                res[name][1].append(len({cat.row_of[h.id] for h in hits} & truth) / 50)
        cells = [
            f"{np.median(ts):.2f} / {np.percentile(ts, 95):.2f}; {np.mean(rec):.3f}"
            for ts, rec in res.values()
        ]
        share = mask.sum() / cat.n
        print(f"| {colours} ({share:.1%}) | {int(mask.sum()):,} | {cells[0]} | {cells[1]} |")
