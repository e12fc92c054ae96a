"""Old and new hot-path code alternated query by query in one process (main shape).

    python benchmarks/main_shape_ab.py 1000000 out/bench/synth-1000000-d512 300

The catalogue is a ``query_shapes.py`` cache folder. "Old" is the code before the trims of
2026-12-07 (anchor rows found per use, no row memo), patched in (the keyword hits' id
lookup, changed since, is the current one on both sides); every query
runs both ways and must give the same hits and scores.
"""

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
import numpy as np  # noqa: E402
from engine_bench import Catalogue  # noqa: E402
from rerank_bench import main_shape_queries  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from lookalike.engines.embedded import EmbeddedEngine  # noqa: E402
from reranker import RerankRequest, run  # noqa: E402
from reranker import anchors as am  # noqa: E402

n = int(sys.argv[1])
folder = sys.argv[2]
engine = EmbeddedEngine(folder, ann_background=False)
new_read, new_found = am.RequestVectors.read, am.RequestVectors.found


def old_read(self, space, window=()):
    if space not in self._reads:
        ids = list(dict.fromkeys([*window, *self.named]))
        self._reads[space] = (ids, self.engine.vector_matrix(ids, space))


def old_found(self, space):
    self.read(space)
    ids, matrix = self._reads[space]
    row = {pid: n for n, pid in enumerate(ids)}
    out = {}
    for pid in self.named:
        vec = matrix[row[pid]]
        if vec.any():
            out[pid] = vec
    return out


new_rows_of = type(engine)._rows_of


def old_rows_of(self, cat, ids):
    return np.fromiter((cat.row_of.get(pid, -1) for pid in ids), np.int64, len(ids))


def use(old):
    am.RequestVectors.read = old_read if old else new_read
    am.RequestVectors.found = old_found if old else new_found
    type(engine)._rows_of = old_rows_of if old else new_rows_of


rng = np.random.default_rng(7)
cat = Catalogue(n, 512)
q = int(sys.argv[3]) if len(sys.argv) > 3 else 300
texts, filters, anchors = main_shape_queries(rng, cat, n, q)


def kr(i):
    return run(engine, RerankRequest(texts[i], anchors[i], filters=filters[i], window=1000, k=10))


times = {True: [], False: []}
with threadpool_limits(1, user_api="blas"):
    for i in range(30):
        kr(i)
    for i in range(q):
        got = {}
        for old in (True, False) if i % 2 else (False, True):
            use(old)
            a = time.perf_counter()
            r = kr(i)
            times[old].append((time.perf_counter() - a) * 1000)
            got[old] = [(h.id, h.score) for h in r.hits]
        assert got[True] == got[False]
o, nw = np.array(times[True]), np.array(times[False])
print(
    f"n={n} q={q} old p50 {np.median(o):.2f} p95 {np.percentile(o, 95):.2f}"
    f" | new p50 {np.median(nw):.2f} p95 {np.percentile(nw, 95):.2f}"
    f" | median of per-query new/old {np.median(nw / o):.3f}"
)
