"""A re-ranking request in the form an engine can execute itself (OpenSearch: a ``rescore``).

The reranker builds it from a ``RerankRequest`` with the anchors' vectors already fetched; an
engine that re-scores inside its cluster answers the page from it in one round trip instead of
shipping the window's vectors back to Python. Plain data, so engines need not know the reranker.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lookalike.filters import Filter


@dataclass(frozen=True)
class SignalPlan:
    """One vector signal: its space, weight, anchors and negatives (unit rows, positive weights)."""

    space: str
    weight: float
    anchors: np.ndarray  # [m, dim]
    anchor_weights: np.ndarray  # [m]
    negatives: np.ndarray  # [n, dim], n may be 0
    negative_weights: np.ndarray  # [n]


@dataclass(frozen=True)
class RescorePlan:
    """The window (BM25 top ``window`` for ``text``, else k-NN around the visual anchors) and
    the formula's inputs, as ``reranker.scoring`` defines them (min-max keyword norm only)."""

    visual: SignalPlan  # always present: its anchors also centre the k-NN window
    window: int
    text: str | None = None
    filters: Filter | None = None
    exclude: tuple[str, ...] = ()
    extra: tuple[SignalPlan, ...] = field(default_factory=tuple)
    aggregation: str = "average"
    negative_strength: float = 0.5
    keyword_weight: float = 0.0
