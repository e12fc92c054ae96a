"""The main shape at 1M through two engines in one process, one whose mapped matrix is
prefaulted (the default) and one whose is not, alternated query by query.

    python benchmarks/prefault_ab.py [data_dir] [queries]

Each engine maps the saved matrix itself (page tables are per mapping), so the only
difference is whether its pages were populated ahead of the queries or fault in as the
keyword windows touch them; the answers must be the same.
"""

import sys
import time

sys.path[:0] = [".", "benchmarks"]
import numpy as np  # noqa: E402
from engine_bench import Catalogue  # noqa: E402
from rerank_bench import main_shape_queries  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from lookalike.engines.embedded import EmbeddedEngine, ann_files  # noqa: E402
from reranker import RerankRequest, run  # noqa: E402

data = sys.argv[1] if len(sys.argv) > 1 else "out/bench/synth-1000000-d512"
q = int(sys.argv[2]) if len(sys.argv) > 2 else 300
n = 1_000_000
real = ann_files.prefault
ann_files.prefault = lambda *a, **k: None  # type: ignore[assignment]
cold = EmbeddedEngine(data, ann_background=True)
cold.knn(np.ones(512, np.float32), 5)  # maps the matrix, unpopulated
ann_files.prefault = real
warm = EmbeddedEngine(data, ann_background=True)
warm.knn(np.ones(512, np.float32), 5)
time.sleep(2)  # let the populate thread finish (0.2 s from the page cache at 1M)
rng = np.random.default_rng(7)
texts, filters, anchors = main_shape_queries(rng, Catalogue(n, 512), n, q + 30)
times: dict[str, list[float]] = {"not prefaulted": [], "prefaulted": []}
same = True
with threadpool_limits(1, user_api="blas"):
    for i in range(q + 30):
        req = RerankRequest(texts[i], anchors[i], filters=filters[i], window=1000, k=10)
        out = []
        pair = (("not prefaulted", cold), ("prefaulted", warm))
        for name, engine in pair if i % 2 else pair[::-1]:
            t = time.perf_counter()
            r = run(engine, req)
            if i >= 30:
                times[name].append((time.perf_counter() - t) * 1000)
            out.append([(h.id, h.score) for h in r.hits])
        same &= out[0] == out[1]
for name, ts in times.items():
    print(f"{name:15s} p50 {np.median(ts):.2f} ms  p95 {np.percentile(ts, 95):.2f} ms")
ratio = np.median(np.array(times["prefaulted"]) / np.array(times["not prefaulted"]))
print(f"per-query ratio prefaulted / not (median) {ratio:.3f}; same answers: {same}")
