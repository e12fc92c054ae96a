"""Anchor re-ranking executed by the cluster: candidates and rescore in one request
(two when the keyword score is blended in: the first reads the window's BM25 range)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lookalike.documents import Candidate
from lookalike.engines.opensearch import queries as q
from lookalike.engines.opensearch.adapter import OpenSearchEngine
from lookalike.engines.opensearch.rescore import (
    JsonDict,
    combined_params,
    keyword_scaling,
    rescored_search_body,
    signal_params,
)
from lookalike.engines.opensearch.source import fit_dimension
from lookalike.engines.plan import RescorePlan
from lookalike.filters import Filter
from lookalike.vectors import anchor_query


def rescored_page(
    engine: OpenSearchEngine,
    anchors: np.ndarray,
    k: int,
    *,
    text: str | None = None,
    weights: Sequence[float] | None = None,
    negatives: np.ndarray | None = None,
    negative_weights: Sequence[float] | None = None,
    negative_strength: float = 1.0,
    mode: str = "average",
    signal_weight: float = 1.0,
    keyword_weight: float = 0.0,
    filters: Filter | None = None,
    exclude: Sequence[str] = (),
    window: int = 1000,
    space: str = "image",
    extra_signals: Sequence[JsonDict] = (),
) -> tuple[list[Candidate], int]:
    """Top-``k`` by the re-ranking formula over a candidate window (keyword hits or k-NN).

    With ``text`` the window is the BM25 top ``window``; without, it is the k-NN top
    ``window`` around the weighted anchor query. Scores are the formula's values.
    ``extra_signals`` (from ``signal_params``, e.g. the text or attribute space) are added
    to the main visual signal; spaces the index lacks are left out. Returns the hits and the
    window's size (counted no further than ``window``).
    """
    served = engine.serving_field(space)  # a projected space: its own field and dimension
    if k <= 0 or served is None:
        return [], 0
    field, dim, _ = served
    anchors = np.stack([fit_dimension(np.ravel(a), dim, space) for a in np.atleast_2d(anchors)])
    if negatives is not None and len(negatives):
        negatives = np.stack([fit_dimension(np.ravel(n), dim, space) for n in negatives])
    clean = q.clean_text(text)
    query_weight, shift = 0.0, 0.0
    if clean:
        first = q.keyword_body(clean, filters, window)
        if exclude:
            first["query"]["bool"]["must_not"] = [{"ids": {"values": sorted(set(exclude))}}]
        if keyword_weight:
            scores = [float(h["_score"]) for h in engine._search(first)]
            if scores:
                query_weight, shift = keyword_scaling(min(scores), max(scores), keyword_weight)
    else:
        centre = anchor_query(np.asarray(anchors), None if weights is None else np.asarray(weights))
        first = q.knn_body(centre, window, filters, exclude, space, engine.ef_search, field)
    main = signal_params(
        anchors, weights, negatives, negative_weights, negative_strength, mode, space,
        signal_weight,
    )  # fmt: skip
    main["field"] = field
    mapped = set(engine.vector_fields())
    params = combined_params([main, *(s for s in extra_signals if s["field"] in mapped)], shift)
    body = rescored_search_body(first, params, window, k, query_weight)
    body["track_total_hits"] = window  # the window's size, counted no further than the window
    offset = float(params["offset"])
    hits, total = engine._search_with_total(body)
    return [Candidate(h["_id"], float(h["_score"]) - offset) for h in hits], min(total, window)


def rescored_search(
    engine: OpenSearchEngine, anchors: np.ndarray, k: int, **options: Any
) -> list[Candidate]:
    """The hits of :func:`rescored_page` (same options)."""
    return rescored_page(engine, anchors, k, **options)[0]


def plan_search(engine: OpenSearchEngine, plan: RescorePlan, k: int) -> tuple[list[Candidate], int]:
    """A reranker plan executed by the cluster (see ``lookalike.engines.plan``)."""
    v = plan.visual
    extra = []
    for s in plan.extra:
        served = engine.serving_field(s.space)
        if served is None:
            continue
        sig = signal_params(
            s.anchors,
            s.anchor_weights.tolist(),
            s.negatives,
            s.negative_weights.tolist(),
            plan.negative_strength,
            plan.aggregation,
            s.space,
            s.weight,
        )
        sig["field"] = served[0]
        extra.append(sig)
    return rescored_page(
        engine, v.anchors, k, text=plan.text, weights=v.anchor_weights.tolist(),
        negatives=v.negatives, negative_weights=v.negative_weights.tolist(),
        negative_strength=plan.negative_strength, mode=plan.aggregation,
        signal_weight=v.weight, keyword_weight=plan.keyword_weight, filters=plan.filters,
        exclude=plan.exclude, window=plan.window, space=v.space, extra_signals=extra,
    )  # fmt: skip
