"""Main shape p50/p95 at 1M for the code of one checkout, and a hash of every answer.

    python benchmarks/main_shape_p50.py /path/to/checkout [data_dir]

Run it alternately for two checkouts (a git worktree of the base commit and this one) to
compare whole hot paths, including changes that cannot be patched in: the hashes must match.
The queries are ``main_shape_ab.py``'s (keyword + category + price, 3 anchors, window 1000).
"""

import hashlib
import sys
import time

root = sys.argv[1]
data = sys.argv[2] if len(sys.argv) > 2 else "out/bench/synth-1000000-d512"
sys.path[:0] = [root, root + "/benchmarks"]
import numpy as np  # noqa: E402
from engine_bench import Catalogue  # noqa: E402
from rerank_bench import main_shape_queries  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from lookalike.engines.embedded import EmbeddedEngine  # noqa: E402
from reranker import RerankRequest, run  # noqa: E402

n, q = 1_000_000, 300
engine = EmbeddedEngine(data, ann_background=True)
rng = np.random.default_rng(7)
cat = Catalogue(n, 512)
texts, filters, anchors = main_shape_queries(rng, cat, n, q)


def kr(i: int):  # noqa: ANN201
    req = RerankRequest(texts[i], anchors[i], filters=filters[i], window=1000, k=10)
    return run(engine, req)


with threadpool_limits(1, user_api="blas"):
    for i in range(30):
        kr(i)
    ts, out = [], []
    for i in range(q):
        t = time.perf_counter()
        r = kr(i)
        ts.append((time.perf_counter() - t) * 1000)
        out.append([(h.id, h.score) for h in r.hits])
digest = hashlib.md5(repr(out).encode()).hexdigest()[:8]
print(f"{root} p50 {np.median(ts):.2f} p95 {np.percentile(ts, 95):.2f} answers {digest}")
