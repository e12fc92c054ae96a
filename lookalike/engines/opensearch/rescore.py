"""Anchor re-scoring pushed down into the cluster as a ``rescore`` over ``script_score``.

The Painless source is a constant: per signal (one vector space each) the anchors,
coefficients, negatives, aggregation and weight travel as ``params``, so the cluster compiles
the script once and caches it. It mirrors ``reranker/scoring.py`` (``combine`` over vector
signals, plus the min-max-normalised keyword score)::

    t_j   = c_j * s_j                      (average, sum, max)
    t_j   = 1 - c_j * (1 - s_j)            (min)
    agg   = sum_j t_j | max_j t_j | min_j t_j
    neg   = sum_j d_j * s-_j               d_j = W_negative * w-_j / sum(w-)
    score = sum_signals W_signal * (agg - neg) + shift + offset

with ``c_j`` derived here from the anchor weights exactly as ``aggregate_terms`` does
(average: ``ŵ_j / ‖Σ ŵ a‖``; sum: ``w_j``; max/min: ``w_j / max w``). A product without a
vector in a space gets 0 from that signal (the re-ranker's zero row gives 0 too). The keyword
part ``W_keyword * (b - lo) / (hi - lo)`` is the rescore's ``query_weight * b`` plus
``shift``, with ``lo``/``hi`` the window's BM25 range (from a first request).
``script_score`` must not return negative scores, so the script adds ``offset`` (a bound on
``|score|``) and the adapter subtracts it from every hit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lookalike.engines.opensearch.mapping import vector_field
from lookalike.engines.opensearch.queries import unit_list
from lookalike.errors import InvalidInput

JsonDict = dict[str, Any]
AGGREGATIONS = ("average", "max", "sum", "min")

SCRIPT_SOURCE = """\
double total = 0.0;
for (def sig : params.signals) {
  if (doc[sig.field].size() == 0) { continue; }
  double agg = 0.0;
  for (int i = 0; i < sig.anchors.size(); ++i) {
    double s = cosineSimilarity(sig.anchors[i], doc[sig.field]);
    double t = sig.mode == 'min' ? 1.0 - sig.coef[i] * (1.0 - s) : sig.coef[i] * s;
    if (i == 0) { agg = t; }
    else if (sig.mode == 'max') { agg = Math.max(agg, t); }
    else if (sig.mode == 'min') { agg = Math.min(agg, t); }
    else { agg += t; }
  }
  double neg = 0.0;
  for (int j = 0; j < sig.negatives.size(); ++j) {
    neg += sig.neg_coef[j] * cosineSimilarity(sig.negatives[j], doc[sig.field]);
  }
  total += sig.weight * (agg - neg);
}
return total + params.shift + params.offset;
"""


def _rows(vectors: np.ndarray | None) -> list[list[float]]:
    if vectors is None or len(vectors) == 0:
        return []
    return [unit_list(r) for r in np.atleast_2d(np.asarray(vectors, dtype=np.float32))]


def anchor_coefficients(anchors: list[list[float]], weights: np.ndarray, mode: str) -> list[float]:
    """Per-anchor coefficients ``c_j`` as ``reranker.scoring.aggregate_terms`` defines them."""
    if not anchors:
        return []
    if np.any(weights <= 0):
        raise InvalidInput("anchor weights must be positive", weights=weights.tolist())
    if mode == "average":
        w_hat = weights / weights.sum()
        norm = float(np.linalg.norm((w_hat[:, None] * np.asarray(anchors)).sum(0)))
        return [float(x) for x in (w_hat / norm if norm > 0 else 0 * w_hat)]
    if mode == "sum":
        return [float(x) for x in weights]
    return [float(x) for x in weights / weights.max()]


def signal_params(
    anchors: np.ndarray,
    weights: Sequence[float] | None = None,
    negatives: np.ndarray | None = None,
    negative_weights: Sequence[float] | None = None,
    negative_strength: float = 1.0,
    mode: str = "average",
    space: str = "image",
    weight: float = 1.0,
) -> JsonDict:
    """One signal's entry in ``params.signals`` (one vector space)."""
    if mode not in AGGREGATIONS:
        raise InvalidInput(f"aggregation must be one of {', '.join(AGGREGATIONS)}", mode=mode)
    rows, neg_rows = _rows(anchors), _rows(negatives)
    w = np.ones(len(rows)) if weights is None else np.asarray(weights, dtype=np.float64)
    nw = np.ones(len(neg_rows)) if negative_weights is None else np.asarray(negative_weights)
    if len(w) != len(rows) or len(nw) != len(neg_rows):
        raise InvalidInput("one weight per anchor", anchors=len(rows), weights=len(w))
    return {
        "field": vector_field(space),
        "anchors": rows,
        "coef": anchor_coefficients(rows, w, mode),
        "negatives": neg_rows,
        "neg_coef": [float(negative_strength * x / nw.sum()) for x in nw] if neg_rows else [],
        "mode": mode,
        "weight": float(weight),
    }


def _bound(sig: JsonDict) -> float:
    """A bound on ``|W * (agg - neg)|`` for one signal (cosines lie in [-1, 1])."""
    coef = sig["coef"]
    agg = (1.0 + 2 * max(coef, default=0.0)) if sig["mode"] == "min" else sum(map(abs, coef))
    return abs(sig["weight"]) * (agg + sum(abs(d) for d in sig["neg_coef"]))


def combined_params(signals: Sequence[JsonDict], shift: float = 0.0) -> JsonDict:
    """The script's ``params``: every signal, the keyword shift, and the offset."""
    bound = sum(_bound(sig) for sig in signals) + abs(shift)
    return {"signals": list(signals), "shift": float(shift), "offset": float(np.ceil(bound + 1))}


def script_params(
    anchors: np.ndarray,
    weights: Sequence[float] | None = None,
    negatives: np.ndarray | None = None,
    negative_weights: Sequence[float] | None = None,
    negative_strength: float = 1.0,
    mode: str = "average",
    space: str = "image",
    signal_weight: float = 1.0,
    shift: float = 0.0,
) -> JsonDict:
    """The script's ``params`` for a single vector signal (the common case)."""
    sig = signal_params(
        anchors, weights, negatives, negative_weights, negative_strength, mode, space,
        signal_weight,
    )  # fmt: skip
    return combined_params([sig], shift)


def keyword_scaling(lo: float, hi: float, keyword_weight: float) -> tuple[float, float]:
    """``(query_weight, shift)`` so that ``query_weight * b + shift = W_kw * minmax(b)``."""
    if hi > lo:
        return keyword_weight / (hi - lo), -keyword_weight * lo / (hi - lo)
    return 0.0, keyword_weight if hi > 0 else 0.0


def rescore_clause(params: JsonDict, window: int, query_weight: float = 0.0) -> JsonDict:
    """The ``rescore`` section: the script score replaces (or adds to) the first-pass score."""
    return {
        "window_size": window,
        "query": {
            "rescore_query": {
                "script_score": {
                    "query": {"match_all": {}},
                    "script": {"lang": "painless", "source": SCRIPT_SOURCE, "params": params},
                }
            },
            "query_weight": query_weight,
            "rescore_query_weight": 1.0,
            "score_mode": "total",
        },
    }


def rescored_search_body(
    first_pass: JsonDict, params: JsonDict, window: int, k: int, query_weight: float = 0.0
) -> JsonDict:
    """A candidate search (keyword or k-NN body) with the anchor rescore attached."""
    body = dict(first_pass)
    body["size"] = min(k, window)
    body.pop("sort", None)  # rescore cannot be combined with an explicit sort
    body["rescore"] = [rescore_clause(params, window, query_weight)]
    return body
