"""Qdrant in local mode (``QdrantClient(":memory:")``, no server): a dense ``image`` vector
(cosine) and a sparse ``bm25`` vector per point with Qdrant's IDF modifier, payload filters.

Qdrant has no BM25 text index; its documented recipe is a sparse vector holding each term's
BM25 term-frequency part (``tf (k1 + 1) / (tf + k1 (1 - b + b len / avglen))``, title terms
counted twice as this engine weights them) with ``modifier=IDF``, so the server multiplies
by the IDF. fastembed's ``Qdrant/bm25`` model computes the same thing but is a hub
download, so the weights are computed here. Local mode answers every query by a numpy scan
in Python over all points (the server's HNSW and payload indexes do not exist in it).
"""

from __future__ import annotations

import time
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
    rerank_top,
    row_of,
)
from peer_engines.columns import load

K1, B = 1.2, 0.75


class Qdrant(Peer):
    name = "Qdrant local"
    slow = True
    detail = "local mode (:memory:), exact scans; BM25 as sparse vectors with the IDF modifier"

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        try:
            from qdrant_client import QdrantClient, models
        except ImportError as exc:
            raise MissingExtra("qdrant-client") from exc
        self.models = models
        self.client = QdrantClient(":memory:")

    def build(self) -> float | None:
        m = self.models
        cols = load(self.setup.columns)
        t0 = time.perf_counter()
        self.client.create_collection(
            "products",
            vectors_config={
                "image": m.VectorParams(size=self.setup.dim, distance=m.Distance.COSINE)
            },
            sparse_vectors_config={"bm25": m.SparseVectorParams(modifier=m.Modifier.IDF)},
        )
        words = cols["words"].astype(np.int64)
        lengths = 2 * 5 + 3  # title words count twice
        norm = K1 * (1 - B + B * lengths / lengths)  # every product has 8 words: len == avglen
        for start in range(0, self.setup.n, 2_000):
            stop = min(start + 2_000, self.setup.n)
            points = []
            for r in range(start, stop):
                tf: dict[int, float] = {}
                for j, w in enumerate(words[r]):
                    tf[int(w)] = tf.get(int(w), 0.0) + (2.0 if j < 5 else 1.0)
                keys = sorted(tf)
                vals = [tf[k] * (K1 + 1) / (tf[k] + norm) for k in keys]
                points.append(
                    m.PointStruct(
                        id=r,
                        vector={
                            "image": cols["vectors"][r].tolist(),
                            "bm25": m.SparseVector(indices=keys, values=vals),
                        },
                        payload={
                            "id": pid(r),
                            "category": CATEGORIES[cols["category"][r]],
                            "color": COLORS[cols["color"][r]],
                            "brand": BRANDS[cols["brand"][r]],
                            "price": float(cols["price"][r]),
                        },
                    )
                )
            self.client.upsert("products", points, wait=True)
        return time.perf_counter() - t0

    def _codes(self, payloads: list[dict[str, Any]]) -> tuple[np.ndarray, ...]:
        return (
            np.array([CATEGORIES.index(p["category"]) for p in payloads]),
            np.array([COLORS.index(p["color"]) for p in payloads]),
            np.array([BRANDS.index(p["brand"]) for p in payloads]),
        )

    def keyword_rerank(self, q: KeywordQuery) -> list[str]:
        m = self.models
        terms = sorted({int(t[1:]) for t in q.text.split()})
        flt = m.Filter(
            must=[
                m.FieldCondition(key="category", match=m.MatchValue(value=q.category)),
                m.FieldCondition(key="price", range=m.Range(lte=q.price_lte)),
            ],
            must_not=[m.HasIdCondition(has_id=[row_of(a) for a in q.anchors])],
        )
        found = self.client.query_points(
            "products",
            query=m.SparseVector(indices=terms, values=[1.0] * len(terms)),
            using="bm25",
            query_filter=flt,
            limit=WINDOW,
            with_payload=["category", "color", "brand"],
            with_vectors=["image"],
        ).points
        anchors = self.client.retrieve(
            "products",
            [row_of(a) for a in q.anchors],
            with_payload=["category", "color", "brand"],
            with_vectors=["image"],
        )
        by_id = {a.id: a for a in anchors}
        anchors = [by_id[row_of(a)] for a in q.anchors]
        return rerank_top(
            [pid(int(p.id)) for p in found],
            np.array([p.score for p in found]),
            np.array([p.vector["image"] for p in found], np.float32),  # type: ignore[index]
            self._codes([p.payload or {} for p in found]),  # type: ignore[arg-type]
            np.array([a.vector["image"] for a in anchors], np.float32),  # type: ignore[index]
            self._codes([a.payload or {} for a in anchors]),  # type: ignore[arg-type]
            q.weights,
            q.k,
        )

    def knn(self, q: KnnQuery) -> list[str]:
        m = self.models
        must: list[Any] = []
        if q.category is not None:
            must.append(m.FieldCondition(key="category", match=m.MatchValue(value=q.category)))
        if q.colors is not None:
            must.append(m.FieldCondition(key="color", match=m.MatchAny(any=list(q.colors))))
        must_not: list[Any] = []
        if q.exclude:
            must_not.append(m.HasIdCondition(has_id=[row_of(a) for a in q.exclude]))
        flt = m.Filter(must=must, must_not=must_not) if must or must_not else None
        found = self.client.query_points(
            "products", query=q.vector.tolist(), using="image", query_filter=flt, limit=q.k
        ).points
        return [pid(int(p.id)) for p in found]


PEER = Qdrant
