"""Anchor re-ranking executed by the cluster: candidates and rescore in one request."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lookalike.documents import Candidate
from lookalike.engines.opensearch import queries as q
from lookalike.engines.opensearch.adapter import OpenSearchEngine
from lookalike.engines.opensearch.rescore import rescored_search_body, script_params
from lookalike.filters import Filter


def rescored_search(
    engine: OpenSearchEngine,
    anchors: np.ndarray,
    k: int,
    *,
    text: str | None = None,
    weights: Sequence[float] | None = None,
    negatives: np.ndarray | None = None,
    negative_weight: float = 1.0,
    mode: str = "average",
    filters: Filter | None = None,
    exclude: Sequence[str] = (),
    window: int = 1000,
    space: str = "image",
) -> list[Candidate]:
    """Top-``k`` by the anchor formula over a candidate window (keyword hits or k-NN).

    With ``text`` the window is the BM25 top ``window``; without, it is the k-NN top
    ``window`` around the weighted mean of the anchors. Scores are the formula's values.
    """
    if k <= 0 or space not in engine.dims():
        return []
    params = script_params(anchors, weights, negatives, negative_weight, mode, space)
    clean = q.clean_text(text)
    if clean:
        first = q.keyword_body(clean, filters, window)
        if exclude:
            first["query"]["bool"]["must_not"] = [{"ids": {"values": sorted(set(exclude))}}]
    else:
        w = np.asarray(params["weights"], dtype=np.float32)[:, None]
        centre = (np.asarray(params["anchors"], dtype=np.float32) * w).sum(axis=0)
        first = q.knn_body(centre, window, filters, exclude, space)
    body = rescored_search_body(first, params, window, k)
    offset = float(params["offset"])
    return [Candidate(h["_id"], float(h["_score"]) - offset) for h in engine._search(body)]
