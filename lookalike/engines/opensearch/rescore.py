"""Anchor re-scoring pushed down into the cluster as a ``rescore`` over ``script_score``.

The Painless source is a constant: anchors, weights, negatives and the aggregation travel as
``params``, so the cluster compiles the script once and caches it. The formula (visual signal):

    pos   = aggregate_i(w_i * cos(anchor_i, v))        aggregate: average | max | sum | min
            (average is weighted: sum(w_i * cos_i) / sum(w_i); no anchors gives 0)
    neg   = max(0, max_j cos(negative_j, v))           no negatives gives 0
    score = pos - negative_weight * neg

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
if (doc[params.field].size() == 0) { return 0.0; }
int n = params.anchors.size();
double agg = 0.0;
double wsum = 0.0;
for (int i = 0; i < n; ++i) {
  double w = params.weights[i];
  double s = w * cosineSimilarity(params.anchors[i], doc[params.field]);
  if (i == 0 || params.mode == 'sum' || params.mode == 'average') {
    agg = (i == 0) ? s : agg + s;
  } else if (params.mode == 'max') {
    agg = Math.max(agg, s);
  } else {
    agg = Math.min(agg, s);
  }
  wsum += w;
}
if (params.mode == 'average' && wsum != 0.0) { agg = agg / wsum; }
double neg = 0.0;
for (int j = 0; j < params.negatives.size(); ++j) {
  neg = Math.max(neg, cosineSimilarity(params.negatives[j], doc[params.field]));
}
return agg - params.negative_weight * neg + params.offset;
"""


def score_offset(weights: Sequence[float], negative_weight: float) -> float:
    """A bound on ``|score|`` that keeps every script score non-negative."""
    return float(sum(abs(w) for w in weights) + abs(negative_weight) + 1.0)


def script_params(
    anchors: np.ndarray,
    weights: Sequence[float] | None = None,
    negatives: np.ndarray | None = None,
    negative_weight: float = 1.0,
    mode: str = "average",
    space: str = "image",
) -> JsonDict:
    """The ``params`` of the rescore script (all the per-request inputs)."""
    if mode not in AGGREGATIONS:
        raise InvalidInput(f"aggregation must be one of {', '.join(AGGREGATIONS)}", mode=mode)
    rows: list[np.ndarray] = list(np.atleast_2d(np.asarray(anchors, dtype=np.float32)))
    rows = [r for r in rows if r.size]
    w = [1.0] * len(rows) if weights is None else [float(x) for x in weights]
    if len(w) != len(rows):
        raise InvalidInput("one weight per anchor", anchors=len(rows), weights=len(w))
    neg_rows: list[np.ndarray] = []
    if negatives is not None and len(negatives):
        neg_rows = list(np.atleast_2d(np.asarray(negatives, dtype=np.float32)))
    return {
        "field": vector_field(space),
        "anchors": [unit_list(r) for r in rows],
        "weights": w,
        "negatives": [unit_list(r) for r in neg_rows],
        "negative_weight": float(negative_weight),
        "mode": mode,
        "offset": score_offset(w, negative_weight),
    }


def rescore_clause(params: JsonDict, window: int) -> JsonDict:
    """The ``rescore`` section: the script score replaces the first-pass score in the window."""
    return {
        "window_size": window,
        "query": {
            "rescore_query": {
                "script_score": {
                    "query": {"match_all": {}},
                    "script": {"lang": "painless", "source": SCRIPT_SOURCE, "params": params},
                }
            },
            "query_weight": 0.0,
            "rescore_query_weight": 1.0,
            "score_mode": "total",
        },
    }


def rescored_search_body(first_pass: JsonDict, params: JsonDict, window: int, k: int) -> JsonDict:
    """A candidate search (keyword or k-NN body) with the anchor rescore attached."""
    body = dict(first_pass)
    body["size"] = min(k, window)
    body.pop("sort", None)  # rescore cannot be combined with an explicit sort
    body["rescore"] = [rescore_clause(params, window)]
    return body
