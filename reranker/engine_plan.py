"""Re-ranking handed to the engine when it can run it itself (OpenSearch: one ``rescore``).

The Python path gathers the window's vectors (an ``_mget`` of up to ``window`` documents on
OpenSearch) and applies ``reranker.scoring``. An engine that executes the same formulas
inside its cluster answers from a :class:`~lookalike.engines.plan.RescorePlan` instead. The
plan is only offered when the engine's formula is the whole story: no per-hit explanation
(that needs the window's arrays), min-max keyword normalisation (``rank`` needs each hit's
rank), products compared by their mean image vector, and anchors given.
"""

from __future__ import annotations

from lookalike.documents import Candidate
from lookalike.engines import Engine
from lookalike.engines.plan import RescorePlan, SignalPlan
from reranker.anchors import RequestVectors
from reranker.request import SPACES, RerankRequest


def window_space(engine: Engine, req: RerankRequest) -> str:
    """The space the k-NN window comes from: the image space, or the tuned one when only the
    tuned weights score (its nearest products, not the raw image's, are the ones it ranks
    first; a raw query image vector is projected into it by the engine)."""
    weights = req.effective_weights
    if weights.get("visual", 0.0) > 0 or weights.get("tuned", 0.0) <= 0:
        return "image"
    return "tuned" if engine.projection("tuned") is not None else "image"


def _signal(
    vecs: RequestVectors, req: RerankRequest, space: str, weight: float
) -> SignalPlan | None:
    anchors = vecs.anchor_set(req.anchors, space, req.query_vectors.get(space))
    if not anchors.names:
        return None
    negatives = vecs.anchor_set(req.negatives, space)
    return SignalPlan(
        space, weight, anchors.matrix, anchors.weights, negatives.matrix, negatives.weights
    )


def build_plan(vecs: RequestVectors, req: RerankRequest) -> RescorePlan | None:
    """The request as an engine-executable plan, or None when only Python can answer it."""
    if req.explain or req.keyword_norm != "minmax" or not req.has_anchors:
        return None
    if req.image_set.per_image:  # set matching needs every candidate's image vectors
        return None
    if window_space(vecs.engine, req) != "image":  # the pushed-down window is the image's k-NN
        return None
    weights = req.effective_weights
    visual = _signal(vecs, req, SPACES["visual"], weights["visual"])
    if visual is None:  # the k-NN window is centred on the visual anchors
        return None
    extra = []
    for signal, space in SPACES.items():
        if signal == "visual" or weights.get(signal, 0.0) <= 0:
            continue
        plan = _signal(vecs, req, space, weights[signal])
        if plan is not None:
            extra.append(plan)
    return RescorePlan(
        visual=visual,
        window=req.window,
        text=req.query,
        filters=req.filters,
        exclude=tuple(sorted(req.excluded)),
        extra=tuple(extra),
        aggregation=req.aggregation,
        negative_strength=weights["negative"],
        keyword_weight=weights["keyword"] if req.query else 0.0,
    )


def engine_page(
    engine: Engine, req: RerankRequest, vecs: RequestVectors
) -> tuple[list[Candidate], int] | None:
    """The top ``offset + k`` re-scored by the engine (id tie-break), with the window's size;
    None when the engine does not re-score itself or the request needs the Python path."""
    plan = build_plan(vecs, req)
    if plan is None:
        return None
    answer = engine.rescored_search(plan, req.offset + req.k)
    if answer is None:
        return None
    hits, total = answer
    return sorted(hits, key=lambda c: (-c.score, c.id)), total
