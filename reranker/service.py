"""The queries every surface offers: "more like this", keyword/filter search re-scored by anchors.

The CLI and the HTTP API build a :class:`RerankRequest` and call :func:`run`. Steps: check the
anchors, fetch a candidate window (BM25 + filters, or kNN within filters when there is no
keyword), gather the window's vectors per space, re-score (``reranker.window``), page with a
deterministic id tie-break, hydrate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lookalike.documents import Candidate, Product
from lookalike.engines import Engine
from lookalike.errors import InvalidInput
from lookalike.filters import Filter
from reranker.anchors import QUERY_ANCHOR, RequestVectors, image_sets
from reranker.engine_plan import engine_page, window_space
from reranker.imagesets import WindowSets, pack, set_scores
from reranker.request import SPACES, Anchor, RerankRequest
from reranker.results import Hit, SearchResult
from reranker.scoring import anchor_query, rank_order
from reranker.window import AnchorSet, Scored, rescore


def _set_signal(
    engine: Engine, req: RerankRequest, ids: list[str]
) -> tuple[AnchorSet, AnchorSet, WindowSets]:
    """The visual signal with products compared as image sets: ``s[i, j]`` is the set
    similarity of candidate ``i``'s images to anchor ``j``'s (0 without images)."""
    query = req.query_image_set
    if query is None and "image" in req.query_vectors:
        query = req.query_vectors["image"][None, :]
    window = WindowSets(req.image_set, {}, engine.image_vectors(ids))
    packed = pack([window.candidates.get(pid) for pid in ids])
    sides = []
    for group, extra in ((req.anchors, query), (req.negatives, None)):
        names, weights, sets = image_sets(engine, group, extra)
        sims = np.zeros((len(ids), len(sets)))
        for j, (name, rows) in enumerate(zip(names, sets, strict=True)):
            sims[:, j] = set_scores(rows, packed, req.image_set)
            window.anchors[name] = rows
        sides.append(
            AnchorSet(names, np.array(weights, np.float64), np.zeros((len(names), 0)), sims)
        )
    return sides[0], sides[1], window


def _candidates(
    engine: Engine, req: RerankRequest, vecs: RequestVectors
) -> tuple[list[Candidate], bool]:
    """The window to re-score, and whether its scores are BM25 (else kNN or filter order)."""
    excluded = req.excluded
    # The window never depends on offset or k: every page re-scores the same candidates, so
    # page 2 continues page 1 exactly (pages past the window are empty).
    need = req.window + len(excluded)
    if req.query:
        found = engine.keyword_search(req.query, req.filters, limit=need)
        return [c for c in found if c.id not in excluded], True
    if not req.has_anchors:
        found = engine.keyword_search(None, req.filters, limit=req.offset + req.k + len(excluded))
        return [c for c in found if c.id not in excluded], False
    # "Sort by similar" / more like this: the nearest products to the weighted mean anchor
    # within the filters (the engine answers exactly for selective filters), then re-scored.
    space = window_space(engine, req)
    query = req.query_vectors.get(space, req.query_vectors.get("image"))
    centre = vecs.anchor_set(req.anchors, space, query)
    vector = anchor_query(centre.matrix, centre.weights)
    found = engine.knn(vector, need - len(excluded), req.filters, sorted(excluded), space)
    return found, False


def score_window(
    engine: Engine,
    req: RerankRequest,
    found: list[Candidate],
    bm25: bool,
    vecs: RequestVectors | None = None,
) -> Scored:
    """Gather the window's vectors per space and apply the scoring formulas."""
    vecs = vecs or RequestVectors(engine, req.anchors, req.negatives)
    ids = [c.id for c in found]
    weights = req.effective_weights
    raw = np.array([c.score if bm25 else 0.0 for c in found], dtype=np.float64)
    anchors: dict[str, AnchorSet] = {}
    negatives: dict[str, AnchorSet] = {}
    candidates: dict[str, np.ndarray] = {}
    window: WindowSets | None = None
    for signal, space in SPACES.items():
        if weights.get(signal, 0.0) <= 0:
            continue
        if signal == "visual" and req.image_set.per_image:
            anchors[signal], negatives[signal], window = _set_signal(engine, req, ids)
            if not anchors[signal].names:
                del anchors[signal]
            continue
        vecs.read(space, ids)  # one read: the window, the anchors and the negatives
        anchor_vecs = vecs.anchor_set(req.anchors, space, req.query_vectors.get(space))
        if not anchor_vecs.names:
            continue
        anchors[signal] = anchor_vecs
        negatives[signal] = vecs.anchor_set(req.negatives, space)
        candidates[signal] = vecs.window(space, ids).astype(np.float64)
    scored = rescore(
        ids, raw, candidates, anchors, negatives, weights, req.aggregation, req.keyword_norm
    )
    scored.image_sets = window
    return scored


def _hydrate(
    engine: Engine,
    ids: Sequence[str],
    scores: Sequence[float],
    explain: Sequence[Any],
    products: dict[str, Product] | None = None,
) -> list[Hit]:
    products = engine.get(list(ids)) if products is None else products
    hits = []
    for pid, score, expl in zip(ids, scores, explain, strict=True):
        p = products.get(pid)
        if p is None:  # deleted between the query and now
            continue
        image = next((i.uri for i in p.images if i.error is None), None)
        hits.append(
            Hit(
                id=pid,
                score=round(float(score), 6),
                title=p.title,
                brand=p.brand,
                category=p.category,
                color=p.color,
                price=p.price,
                image=image,
                explanation=expl,
            )
        )
    return hits


def _keyword_explanation(score: float) -> dict[str, Any]:
    """Without anchors the score is the raw BM25 (keyword order alone)."""
    entry = {
        "weight": 1.0,
        "raw": float(score),
        "value": float(score),
        "contribution": float(score),
    }
    return {"signals": {"keyword": entry}, "anchors": {}, "negatives": {}}


def run(engine: Engine, req: RerankRequest) -> SearchResult:
    """Answer one request: candidates, re-scoring against the anchors, a stable page."""
    if req.negatives and not req.has_anchors:
        raise InvalidInput("negatives need at least one anchor (or a query image)")
    vecs = RequestVectors(engine, req.anchors, req.negatives)
    need_image = bool(req.anchors) and (req.effective_weights["visual"] > 0 or not req.query)
    names = req.anchor_ids() + ([QUERY_ANCHOR] if req.query_vectors else [])
    if engine.rescores or not req.query:  # the anchors' image vectors are needed first
        vecs.check(req.anchor_ids(), need_image)
    if engine.rescores and (pushed := engine_page(engine, req, vecs)) is not None:
        top = pushed[0][req.offset : req.offset + req.k]  # re-scored inside the engine
        hits = _hydrate(engine, [c.id for c in top], [c.score for c in top], [None] * len(top))
        return SearchResult(hits=hits, total=pushed[1], anchors=names)
    found, bm25 = _candidates(engine, req, vecs)
    # with keywords the window comes first, so each space is read once for window and anchors
    vecs.check(req.anchor_ids(), need_image, [c.id for c in found])
    page = slice(req.offset, req.offset + req.k)
    if not req.has_anchors:
        scores = np.array([c.score for c in found], dtype=np.float64)
        order = (
            rank_order(scores, [c.id for c in found])[page] if bm25 else np.arange(len(found))[page]
        )
        expl: list[Any] = [_keyword_explanation(scores[i]) if req.explain else None for i in order]
        hits = _hydrate(engine, [found[i].id for i in order], [scores[i] for i in order], expl)
        total = len(found) if bm25 else engine.count(req.filters)  # browsing: the filtered set
        return SearchResult(hits=hits, total=total, anchors=[])
    scored = score_window(engine, req, found, bm25, vecs)
    order = scored.order()[page]
    page_ids = [scored.ids[i] for i in order]
    products = engine.get(page_ids)
    expl = [scored.explain(int(i)) if req.explain else None for i in order]
    if req.explain and scored.image_sets is not None:
        _explain_pairs(engine, scored.image_sets, products, page_ids, expl)
    hits = _hydrate(engine, page_ids, [scored.score[i] for i in order], expl, products)
    return SearchResult(hits=hits, total=len(found), anchors=names)


def _image_positions(product: Product | None, rows: int) -> list[int] | None:
    """Image positions of a set's rows: the images without an error, in position order."""
    if product is None:
        return None
    positions = sorted(i.position for i in product.images if i.error is None)
    return positions if len(positions) == rows else None


def _explain_pairs(
    engine: Engine,
    window: WindowSets,
    products: dict[str, Product],
    page_ids: list[str],
    expl: list[Any],
) -> None:
    """Add each hit's matched image pairs (by image position), scores and coverage."""
    anchors = engine.get([name for name in window.anchors if name != QUERY_ANCHOR])
    if QUERY_ANCHOR in window.anchors:
        window.positions[QUERY_ANCHOR] = list(range(len(window.anchors[QUERY_ANCHOR])))
    for name, product in anchors.items():
        window.positions[name] = _image_positions(product, len(window.anchors[name]))
    for pid, entry in zip(page_ids, expl, strict=True):
        rows = window.candidates.get(pid)
        window.positions[pid] = _image_positions(
            products.get(pid), 0 if rows is None else len(rows)
        )
        entry["image_sets"] = window.explain(pid)


def similar(
    engine: Engine, product_id: str, k: int = 10, filters: Filter | None = None
) -> SearchResult:
    """Products that look like ``product_id`` (itself excluded), within the filters."""
    return run(engine, RerankRequest(anchors=(Anchor(product_id),), filters=filters, k=k))


def search(
    engine: Engine,
    query: str | None,
    anchor_ids: Sequence[str] = (),
    filters: Filter | None = None,
    k: int = 10,
    offset: int = 0,
    candidates: int = 1000,
) -> SearchResult:
    """Keyword (BM25) and/or filter search, re-sorted by similarity to anchors when given."""
    anchors = tuple(Anchor(a) for a in dict.fromkeys(anchor_ids))
    req = RerankRequest(query, anchors, filters=filters, k=k, offset=offset, window=candidates)
    return run(engine, req)
