"""The two queries every surface offers: "more like this" and keyword search with anchors.

The CLI and the HTTP API are thin layers over these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from lookalike.documents import Candidate
from lookalike.engines import Engine
from lookalike.errors import InvalidInput, NotFound
from lookalike.filters import Filter
from reranker.scoring import anchor_query, cosine_scores


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    title: str
    brand: str | None = None
    category: str | None = None
    color: str | None = None
    price: float | None = None
    image: str | None = None


@dataclass
class SearchResult:
    hits: list[Hit]
    total: int  # candidates considered (after filters and anchor exclusion)
    anchors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "hits": [asdict(h) for h in self.hits],
            "total": self.total,
            "anchors": self.anchors,
        }


def anchor_vectors(engine: Engine, anchor_ids: Sequence[str]) -> np.ndarray:
    """Visual vectors of the anchors; an unknown anchor is an error, never an empty answer."""
    ids = list(dict.fromkeys(anchor_ids))
    known = engine.get(ids)
    missing = [a for a in ids if a not in known]
    if missing:
        raise NotFound(f"unknown product id(s): {', '.join(missing)}", ids=missing)
    vectors = engine.vectors(ids, space="image")
    without = [a for a in ids if a not in vectors]
    if without:
        raise InvalidInput(
            f"product(s) {', '.join(without)} have no image vector (no image could be loaded)",
            ids=without,
        )
    return np.stack([vectors[a] for a in ids])


def _hydrate(engine: Engine, scored: Sequence[Candidate]) -> list[Hit]:
    products = engine.get([c.id for c in scored])
    hits = []
    for c in scored:
        p = products.get(c.id)
        if p is None:  # deleted between the query and now
            continue
        image = next((i.uri for i in p.images if i.error is None), None)
        hits.append(
            Hit(
                c.id,
                round(float(c.score), 6),
                p.title,
                p.brand,
                p.category,
                p.color,
                p.price,
                image,
            )
        )
    return hits


def similar(
    engine: Engine, product_id: str, k: int = 10, filters: Filter | None = None
) -> SearchResult:
    """Products that look like ``product_id`` (itself excluded), within the filters."""
    query = anchor_query(anchor_vectors(engine, [product_id]))
    found = engine.knn(query, k, filters=filters, exclude=[product_id], space="image")
    return SearchResult(_hydrate(engine, found), len(found), [product_id])


def rerank(engine: Engine, candidates: Sequence[Candidate], query: np.ndarray) -> list[Candidate]:
    """Candidates ordered by visual similarity; those without a vector keep keyword order last."""
    ids = [c.id for c in candidates]
    vectors = engine.vectors(ids, space="image")
    with_vec = [i for i in ids if i in vectors]
    scores = (
        cosine_scores(query, np.stack([vectors[i] for i in with_vec]))
        if with_vec
        else np.zeros(0, dtype=np.float32)
    )
    ranked = sorted(
        (Candidate(i, float(s)) for i, s in zip(with_vec, scores, strict=True)),
        key=lambda c: (-c.score, c.id),
    )
    return ranked + [Candidate(i, -1.0) for i in ids if i not in vectors]


def search(
    engine: Engine,
    query: str | None,
    anchor_ids: Sequence[str] = (),
    filters: Filter | None = None,
    k: int = 10,
    offset: int = 0,
    candidates: int = 1000,
) -> SearchResult:
    """Keyword (BM25) and/or filter search, re-sorted by similarity to anchors when given.

    With anchors and no keyword, the filtered set is re-sorted by similarity ("sort by
    similar"). Anchors never appear in their own results.
    """
    query = (query or "").strip() or None
    anchors = list(dict.fromkeys(anchor_ids))
    vector = anchor_query(anchor_vectors(engine, anchors)) if anchors else None
    window = candidates if (vector is not None or query) else offset + k + len(anchors)
    found = engine.keyword_search(query, filters, limit=max(window, offset + k + len(anchors)))
    excluded = set(anchors)
    found = [c for c in found if c.id not in excluded]
    if vector is not None:
        found = rerank(engine, found, vector)
    return SearchResult(_hydrate(engine, found[offset : offset + k]), len(found), anchors)
