"""Re-scoring a gathered candidate window: the scoring formulas applied once, kept for explaining.

Pure numpy over matrices the service gathered from the engine (no engine calls here), so
the explanation reads the very arrays the score was computed from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reranker import scoring
from reranker.imagesets import WindowSets


@dataclass
class AnchorSet:
    """Anchors (or negatives) that have a vector in one space, with their weights.

    ``sims`` replaces the cosines to ``matrix`` when the similarity of every candidate to
    every anchor was computed elsewhere (products compared as image sets).
    """

    names: list[str]
    weights: np.ndarray
    matrix: np.ndarray  # [m, dim], unit rows, zero-padded
    sims: np.ndarray | None = None  # [n, m], candidate x anchor


@dataclass
class Scored:
    """Final scores of the window and every intermediate array behind them."""

    ids: list[str]
    score: np.ndarray
    signals: dict[str, np.ndarray]  # unweighted value per signal
    weights: dict[str, float]
    keyword_raw: np.ndarray
    anchor_terms: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)
    negative_terms: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)
    image_sets: WindowSets | None = None  # the visual signal compared products as image sets

    def order(self) -> np.ndarray:
        return scoring.rank_order(self.score, self.ids)

    def explain(self, i: int) -> dict[str, Any]:
        """Each signal's and each anchor's contribution to candidate ``i``'s score."""
        signals: dict[str, dict[str, float]] = {}
        for name, value in self.signals.items():
            w = self.weights.get(name, 0.0)
            entry = {"weight": w, "value": float(value[i]), "contribution": w * float(value[i])}
            if name == "keyword":
                entry["raw"] = float(self.keyword_raw[i])
            signals[name] = entry
        anchors: dict[str, dict[str, float]] = {}
        negatives: dict[str, dict[str, float]] = {}
        for target, source in ((anchors, self.anchor_terms), (negatives, self.negative_terms)):
            for signal, (names, terms) in source.items():
                w = self.weights.get(signal, 0.0)
                for j, name in enumerate(names):
                    target.setdefault(name, {})[signal] = w * float(terms[i, j])
        return {"signals": signals, "anchors": anchors, "negatives": negatives}


def rescore(
    ids: list[str],
    keyword_raw: np.ndarray,
    candidates: dict[str, np.ndarray],
    anchors: dict[str, AnchorSet],
    negatives: dict[str, AnchorSet],
    weights: dict[str, float],
    aggregation: str,
    keyword_norm: str,
) -> Scored:
    """Score ``ids`` (rows of ``candidates[signal]``) against the anchors of every signal.

    ``signal = Σ_j aggregate_terms + Σ_j negative_terms``; ``keyword = normalize_keyword``;
    ``score = combine(signals, weights)``. Signals whose weight is 0 or that no anchor has a
    vector for are left out. With precomputed ``sims`` (image sets) ``average`` is the
    weighted mean of the similarities (there is no single mean vector to normalise by).
    """
    scored = Scored(ids, np.zeros(len(ids)), {}, weights, np.asarray(keyword_raw, np.float64))
    for signal, anchor_set in anchors.items():
        if weights.get(signal, 0.0) <= 0 or not anchor_set.names:
            continue
        cand = candidates.get(signal)
        sims, mean_of = _sims(cand, anchor_set)
        terms = scoring.aggregate_terms(sims, anchor_set.weights, aggregation, mean_of)
        value = terms.sum(axis=1)
        scored.anchor_terms[signal] = (anchor_set.names, terms)
        neg = negatives.get(signal)
        if neg is not None and neg.names:
            neg_terms = scoring.negative_terms(
                _sims(cand, neg)[0], neg.weights, weights.get("negative", 0.0)
            )
            value = value + neg_terms.sum(axis=1)
            scored.negative_terms[signal] = (neg.names, neg_terms)
        scored.signals[signal] = value
    if weights.get("keyword", 0.0) > 0 and np.any(scored.keyword_raw > 0):
        scored.signals["keyword"] = scoring.normalize_keyword(scored.keyword_raw, keyword_norm)
    combined = scoring.combine(scored.signals, weights)
    scored.score = combined if combined.size else np.zeros(len(ids))
    return scored


def _sims(cand: np.ndarray | None, anchors: AnchorSet) -> tuple[np.ndarray, np.ndarray | None]:
    """Candidate x anchor similarities, and the anchor vectors ``average`` normalises by."""
    if anchors.sims is not None:
        return anchors.sims, None
    if cand is None:
        raise ValueError("no candidate vectors for a signal without precomputed similarities")
    return scoring.cosine_matrix(cand, anchors.matrix), anchors.matrix
