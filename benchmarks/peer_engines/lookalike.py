"""This engine: ``EmbeddedEngine`` on the catalogue ``query_shapes.ensure_built`` makes, through
the reranker's own path (``reranker.run``) and ``engine.knn``, as the API answers."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from peer_engines.base import (
    BRANDS,
    CATEGORIES,
    COLORS,
    KeywordQuery,
    KnnQuery,
    Peer,
    Setup,
    pid,
)
from peer_engines.columns import description, load, title

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]


class Lookalike(Peer):
    name = "this engine"

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        from lookalike.engines.embedded import EmbeddedEngine

        self._engine_cls = EmbeddedEngine
        self.engine: EmbeddedEngine | None = None

    def build(self) -> float | None:
        from query_shapes import DONE, data_dir_for, ensure_built

        cache = Path(str(self.setup.options.get("cache")))
        folder = data_dir_for(self.setup.n, self.setup.dim, cache)
        if self.setup.options.get("read_only") and not (folder / DONE).exists():
            raise RuntimeError(f"{folder} is not built (read-only cache)")
        folder, secs = ensure_built(self.setup.n, self.setup.dim, cache)
        self.engine = self._engine_cls(folder, ann_background=False)
        t0 = time.perf_counter()
        # the first unfiltered and category queries load (or build and save) the HNSW graph
        # and build the per-category partitions, as a serving process does at start
        v = np.zeros(self.setup.dim, np.float32)
        v[0] = 1.0
        from lookalike.filters import Term

        self.engine.knn(v, 10)
        self.engine.knn(v, 10, Term("category", CATEGORIES[0]))
        self.startup_s = time.perf_counter() - t0
        ann = self.engine.snapshot.spaces["image"].ann
        self.detail = (
            f"HNSW-SQ8 M=32 ef {self.engine.policy.ef_search} ({'graph' if ann else 'no graph'}),"
            f" partitions, tantivy BM25; graph+partitions ready {self.startup_s:.1f} s"
        )
        self._check()
        return secs

    def _check(self, sample: int = 300) -> None:
        """The regenerated columns the peers index must be this engine's products."""
        assert self.engine is not None
        cols = load(self.setup.columns)
        rows = np.random.default_rng(3).choice(self.setup.n, sample, replace=False)
        ids = [pid(int(r)) for r in rows]
        products = self.engine.get(ids)
        vecs = self.engine.vectors(ids, "image")
        bad, worst = 0, 0.0
        for r, i in zip(rows, ids, strict=True):
            diff = float(np.abs(vecs[i] - cols["vectors"][r]).max())
            worst = max(worst, diff)
            p = products[i]
            same = (
                p.title == title(cols["words"][r])
                and p.description == description(cols["words"][r])
                and p.category == CATEGORIES[cols["category"][r]]
                and p.color == COLORS[cols["color"][r]]
                and p.brand == BRANDS[cols["brand"][r]]
                and abs(float(p.price or 0) - float(cols["price"][r])) < 1e-9
                and diff < 1e-6  # the engine re-normalises: float32 rounding, 1e-8
            )
            bad += not same
        if bad:
            raise RuntimeError(f"{bad}/{sample} products differ from the regenerated columns")
        self.detail += f"; {sample} products checked: same fields, vectors within {worst:.1e}"

    def keyword_rerank(self, q: KeywordQuery) -> list[str]:
        from lookalike.filters import And, Range, Term
        from reranker import Anchor, RerankRequest, run

        assert self.engine is not None
        flt = And((Term("category", q.category), Range("price", lte=q.price_lte)))
        anchors = tuple(Anchor(a, w) for a, w in zip(q.anchors, q.weights, strict=True))
        req = RerankRequest(q.text, anchors, filters=flt, window=1000, k=q.k)
        return [h.id for h in run(self.engine, req).hits]

    def knn(self, q: KnnQuery) -> list[str]:
        from lookalike.filters import Filter, Term, Terms

        assert self.engine is not None
        flt: Filter | None = None
        if q.category is not None:
            flt = Term("category", q.category)
        elif q.colors is not None:
            flt = Terms("color", q.colors)
        return [c.id for c in self.engine.knn(q.vector, q.k, flt, q.exclude)]

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()


PEER = Lookalike
