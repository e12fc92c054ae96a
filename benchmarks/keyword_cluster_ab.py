"""The main shape at 1M with the keyword index clustered by category (the default on
rebuild) against one in rowid order, alternated query by query in one process.

    python benchmarks/keyword_cluster_ab.py DATA_DIR [queries]

DATA_DIR is a built 1M catalogue (``query_shapes.py``); its keyword index is rebuilt
clustered on open if it is not already. The rowid-ordered index is built beside it under
``DATA_DIR.rowid-order/`` (about 20 s at 1M). Both engines share the store, the snapshot
and the graph; only the tantivy document order differs. Prints p50/p95 of the bare
filtered BM25 top-1000 and of the whole shape through ``reranker.run``, and whether the
answers are the same.
"""

import json
import shutil
import sys
import time
from pathlib import Path

sys.path[:0] = [".", "benchmarks"]
import numpy as np  # noqa: E402
from engine_bench import Catalogue  # noqa: E402
from rerank_bench import main_shape_queries  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from lookalike.engines.embedded import EmbeddedEngine  # noqa: E402
from lookalike.engines.embedded.keyword import KeywordIndex  # noqa: E402
from reranker import RerankRequest, run  # noqa: E402

data = Path(sys.argv[1])
q = int(sys.argv[2]) if len(sys.argv) > 2 else 300
n = 1_000_000
clustered = EmbeddedEngine(data, ann_background=True)
clustered.knn(np.ones(512, np.float32), 5)
clustered.keyword_search("w1", limit=1)  # rebuilds the index clustered if it was not
plain = EmbeddedEngine(data, ann_background=True)
plain.knn(np.ones(512, np.float32), 5)
side = data.with_name(data.name + ".rowid-order")
state = json.loads((data / "keyword" / "state.json").read_text())
if (
    not (side / "keyword" / "state.json").exists()
    or json.loads((side / "keyword" / "state.json").read_text())["seq"] != state["seq"]
):
    shutil.rmtree(side, ignore_errors=True)
    side.mkdir()
    t0 = time.perf_counter()
    plain.keyword = KeywordIndex(side, plain.store, 30.0, cluster_fields=())
    plain.keyword.rebuild()
    print(f"rowid-ordered index built in {time.perf_counter() - t0:.1f} s")
else:
    plain.keyword = KeywordIndex(side, plain.store, 30.0, cluster_fields=())
rng = np.random.default_rng(7)
texts, filters, anchors = main_shape_queries(rng, Catalogue(n, 512), n, q + 30)
times: dict[tuple[str, str], list[float]] = {}
same = True
pair = (("rowid order", plain), ("clustered", clustered))
with threadpool_limits(1, user_api="blas"):
    for i in range(q + 30):  # the bare search, then (a separate pass) the whole shape
        for name, engine in pair if i % 2 else pair[::-1]:
            t = time.perf_counter()
            engine.keyword_search(texts[i], filters[i], limit=1000)
            if i >= 30:
                times.setdefault((name, "BM25 + filter top-1000"), []).append(
                    (time.perf_counter() - t) * 1e3
                )
    for i in range(q + 30):
        req = RerankRequest(texts[i], anchors[i], filters=filters[i], window=1000, k=10)
        out = []
        for name, engine in pair if i % 2 else pair[::-1]:
            t = time.perf_counter()
            r = run(engine, req)
            if i >= 30:
                times.setdefault((name, "main shape"), []).append((time.perf_counter() - t) * 1e3)
            out.append([(h.id, h.score) for h in r.hits])
        same &= out[0] == out[1]
for (name, what), ts in sorted(times.items(), key=lambda kv: kv[0][::-1]):
    print(f"{what:24s} {name:12s} p50 {np.median(ts):6.2f} ms  p95 {np.percentile(ts, 95):6.2f} ms")
for what in ("BM25 + filter top-1000", "main shape"):
    r = np.array(times[("clustered", what)]) / np.array(times[("rowid order", what)])
    print(f"{what}: per-query ratio clustered / rowid order (median) {np.median(r):.3f}")
print(f"same answers: {same}")
