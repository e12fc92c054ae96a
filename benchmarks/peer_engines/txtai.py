"""txtai: one ``Embeddings`` with content storage (SQLite, so SQL filters work) and two
sub-indexes: ``keyword`` (txtai's BM25 scoring over title + description) and ``dense`` (the
faiss ANN, txtai's defaults: ``IVF{4 sqrt n},Flat`` with nprobe ``cells / 16``) over the
products' precomputed image vectors.

The vectors come in through txtai's ``external`` method: the dense sub-index reads the
``pid`` column and its transform returns that product's stored vector, so the index holds
exactly the catalogue's vectors; queries pass vectors as bind parameters
(``similar(:v, 'dense', N)``), which txtai does not transform. txtai filters after the ANN
(SQL over the candidates), so filtered queries ask for more candidates: ``N`` = 8 x the
limit / share of rows kept. The keyword window is re-scored with numpy over the vectors
mapped from the catalogue's ``.npy`` (txtai returns no vectors).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from peer_engines.base import (
    BRANDS,
    CATEGORIES,
    COLORS,
    WINDOW,
    KeywordQuery,
    KnnQuery,
    MissingExtra,
    Peer,
    Setup,
    pid,
    rerank_rows,
    row_of,
)
from peer_engines.columns import description, load, title

_VECTORS: np.ndarray | None = None


def vectors_of(pids: list[str]) -> np.ndarray:
    """The external transform: stored image vectors by product id."""
    assert _VECTORS is not None
    return np.asarray(_VECTORS[[row_of(p) for p in pids]], np.float32)


def _name_saved_transform(path: Path) -> None:
    """Point the saved sub-index configs at ``vectors_of`` by module path.

    txtai saves a callable transform as its ``repr`` (``<function vectors_of at 0x...>``),
    which cannot be loaded back, and resolves a named one only when
    ``ALLOW_RESOLVE_TRANSFORM`` is set: the name is this module's own function, trusted.
    """
    os.environ.setdefault("ALLOW_RESOLVE_TRANSFORM", "True")
    for config in path.rglob("config.json"):
        saved = json.loads(config.read_text())
        if str(saved.get("transform", "")).startswith("<function"):
            saved["transform"] = f"{__name__}.vectors_of"
            config.write_text(json.dumps(saved))


class Txtai(Peer):
    name = "txtai"

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        try:
            from txtai import Embeddings
        except ImportError as exc:
            raise MissingExtra("txtai") from exc
        self.embeddings_cls = Embeddings

    def config(self) -> dict[str, Any]:
        return {
            "content": True,
            "defaults": False,
            "indexes": {
                "keyword": {"keyword": True},
                "dense": {
                    "method": "external",
                    "transform": vectors_of,
                    "backend": "faiss",
                    "columns": {"text": "pid"},
                },
            },
        }

    def build(self) -> float | None:
        global _VECTORS
        cols = load(self.setup.columns)
        _VECTORS = self.vectors = cols["vectors"]
        self.category, self.color, self.brand = cols["category"], cols["color"], cols["brand"]
        self.cols = cols
        path = self.setup.workdir / "index"
        done = self.setup.workdir / "BUILT"
        self.embeddings = self.embeddings_cls(self.config())
        secs = None
        if not done.exists():
            t0 = time.perf_counter()
            words, price = cols["words"], cols["price"]
            docs = (
                (
                    pid(r),
                    {
                        "pid": pid(r),
                        "text": f"{title(words[r])} {description(words[r])}",
                        "category": CATEGORIES[self.category[r]],
                        "color": COLORS[self.color[r]],
                        "brand": BRANDS[self.brand[r]],
                        "price": float(price[r]),
                    },
                    None,
                )
                for r in range(self.setup.n)
            )
            self.embeddings.index(docs)
            self.embeddings.save(str(path))
            secs = time.perf_counter() - t0
            done.write_text(f"{secs:.1f}\n")
        else:
            secs, self.cached = float(done.read_text()), True
            _name_saved_transform(path)
            self.embeddings.load(str(path), config=self.config())
        self.slow = self.setup.n > 200_000  # its keyword window takes seconds at 1M
        dense = self.embeddings.indexes["dense"].ann
        self.detail = f"faiss {dense.backend.__class__.__name__}"
        self.detail += f" nlist {getattr(dense.backend, 'nlist', '-')} nprobe {dense.nprobe()};"
        self.detail += " BM25 keyword sub-index (title + description, no title boost); SQL filters"
        return secs

    @staticmethod
    def _in(values: tuple[str, ...]) -> str:
        return "(" + ", ".join(f"'{v}'" for v in values) + ")"

    def keyword_rerank(self, q: KeywordQuery) -> list[str]:
        found = self.embeddings.search(
            f"select id, score from txtai where similar(:q, 'keyword', {WINDOW * 20})"
            f" and category = :c and price <= {q.price_lte!r} and id not in {self._in(q.anchors)}"
            f" limit {WINDOW}",
            parameters={"q": q.text, "c": q.category},
        )
        rows = np.array([row_of(f["id"]) for f in found], np.int64)
        arows = np.array([row_of(a) for a in q.anchors], np.int64)
        scores = np.array([f["score"] for f in found], np.float64)
        return rerank_rows(self.cols, [f["id"] for f in found], scores, rows, arows, q.weights, q.k)

    def knn(self, q: KnnQuery) -> list[str]:
        where, share = [], 1.0
        if q.category is not None:
            where.append(f"category = '{q.category}'")
            share /= len(CATEGORIES)
        if q.colors is not None:
            where.append(f"color in {self._in(q.colors)}")
            share *= len(q.colors) / len(COLORS)
        if q.exclude:
            where.append(f"id not in {self._in(q.exclude)}")
        candidates = int(q.k / share) * (8 if share < 1 else 1) + len(q.exclude)
        sql = f"select id, score from txtai where similar(:v, 'dense', {candidates})"
        sql += "".join(f" and {w}" for w in where) + f" limit {q.k}"
        found = self.embeddings.search(sql, parameters={"v": q.vector})
        return [f["id"] for f in found]


PEER = Txtai
