"""Every scoring formula as plain numpy, shared by all engines, the service and the tests.

Notation: ``s[i, j]`` is the cosine similarity of candidate ``i`` to anchor ``j`` in one space
(vectors are unit length; a shorter vector is zero-padded), ``w[j] > 0`` the anchor weights,
``ŵ = w / Σw`` and ``w' = w / max(w)``. Each function returns per-anchor *terms* whose row sum
is the aggregated score, so an explanation is read from the same arrays the score came from.

The final score of a candidate (see :func:`combine`)::

    score = Σ_space W_space · (agg(s_space) − W_negative · neg(s⁻_space)) + W_keyword · kw

An OpenSearch Painless script mirrors these functions one for one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, get_args

import numpy as np

from lookalike.vectors import anchor_query  # noqa: F401 - the k-NN query, q = Σ ŵ_j a_j / ‖…‖

Aggregation = Literal["average", "max", "sum", "min"]
KeywordNorm = Literal["minmax", "rank"]
AGGREGATIONS: tuple[str, ...] = get_args(Aggregation)
KEYWORD_NORMS: tuple[str, ...] = get_args(KeywordNorm)
RANK_CONSTANT = 60.0  # reciprocal-rank constant (Cormack et al. 2009)


def pad_rows(rows: Sequence[np.ndarray], dim: int | None = None) -> np.ndarray:
    """Stack vectors of possibly different lengths, zero-padding each to ``dim`` (default: longest).

    Attribute vectors grow with the vocabulary: an older, shorter one-hot vector has zeros
    for tokens added later, so zero-padding is exact.
    """
    width = dim if dim is not None else max((len(r) for r in rows), default=0)
    if rows and all(len(r) == width for r in rows):
        return np.stack(rows).astype(np.float64, copy=False)
    out = np.zeros((len(rows), width), dtype=np.float64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def cosine_matrix(candidates: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """``s[i, j] = c_i · a_j`` for unit rows (the two matrices are padded to one width)."""
    if candidates.shape[1] == anchors.shape[1]:
        same: np.ndarray = np.asarray(candidates, np.float64) @ np.asarray(anchors, np.float64).T
        return same
    width = max(candidates.shape[1], anchors.shape[1])
    c = np.zeros((candidates.shape[0], width))
    c[:, : candidates.shape[1]] = candidates
    a = np.zeros((anchors.shape[0], width))
    a[:, : anchors.shape[1]] = anchors
    result: np.ndarray = c @ a.T
    return result


def aggregate_terms(
    sims: np.ndarray, weights: np.ndarray, how: str, anchors: np.ndarray | None = None
) -> np.ndarray:
    """Per-anchor terms ``t[i, j]``; the aggregated similarity is ``Σ_j t[i, j]``.

    - ``average`` — cosine to the weighted mean anchor vector:
      ``Σ_j ŵ_j s_ij / ‖Σ_j ŵ_j a_j‖``, term ``ŵ_j s_ij / ‖Σ ŵ a‖``; without ``anchors``
      (similarities that are not cosines to one vector each, e.g. image sets) the weighted
      mean ``Σ_j ŵ_j s_ij``.
    - ``sum`` — ``Σ_j w_j s_ij`` with raw weights: ranks like ``average`` on one signal, but
      grows with the number of anchors against the other signals.
    - ``max`` — "like any of them": ``max_j w'_j s_ij``; only the best anchor has a term.
    - ``min`` — "like all of them": ``min_j (1 − w'_j (1 − s_ij))``; the weakest anchor
      decides (a lighter anchor's shortfall counts less); only that anchor has a term.

    Ties in ``max``/``min`` go to the first anchor.
    """
    s = np.asarray(sims, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    n, m = s.shape
    if m == 0:
        return np.zeros((n, 0))
    if how == "average":
        w_hat = w / w.sum()
        if anchors is None:
            weighted_mean: np.ndarray = s * w_hat[None, :]
            return weighted_mean
        norm = float(np.linalg.norm((w_hat[:, None] * np.asarray(anchors, np.float64)).sum(0)))
        terms: np.ndarray = s * w_hat[None, :] / norm if norm > 0 else np.zeros_like(s)
        return terms
    if how == "sum":
        return s * w[None, :]
    w_rel = w / w.max()
    if how == "max":
        values = s * w_rel[None, :]
        pick = np.argmax(values, axis=1)
    elif how == "min":
        values = 1.0 - w_rel[None, :] * (1.0 - s)
        pick = np.argmin(values, axis=1)
    else:
        raise ValueError(f"unknown aggregation {how!r}; one of {', '.join(AGGREGATIONS)}")
    out = np.zeros_like(s)
    rows = np.arange(n)
    out[rows, pick] = values[rows, pick]
    return out


def negative_terms(sims: np.ndarray, weights: np.ndarray, strength: float) -> np.ndarray:
    """Penalty terms of negative anchors: ``−W_negative · ŵ_j s⁻_ij`` (weighted mean, pulled down).

    A candidate close to the negatives loses up to ``W_negative``; one orthogonal to them
    loses nothing, one opposite to them gains.
    """
    s = np.asarray(sims, dtype=np.float64)
    if s.shape[1] == 0:
        return np.zeros_like(s)
    w = np.asarray(weights, dtype=np.float64)
    terms: np.ndarray = -strength * s * (w / w.sum())[None, :]
    return terms


def normalize_keyword(scores: np.ndarray, method: str) -> np.ndarray:
    """BM25 scores of the window mapped to ``[0, 1]`` so they can be weighed with similarities.

    - ``minmax`` — ``(b − min) / (max − min)`` within the window; all 1 when every score is
      equal and positive, all 0 when they are all zero (no keyword query).
    - ``rank`` — reciprocal rank ``(K + 1) / (K + r)`` with ``K = 60`` and ``r`` the competition
      rank ``1 + #{b' > b}`` (ties share a rank): 1 for the top hit, slowly decaying.
    """
    b = np.asarray(scores, dtype=np.float64)
    if b.size == 0:
        return b
    if method == "minmax":
        lo, hi = float(b.min()), float(b.max())
        if hi > lo:
            result: np.ndarray = (b - lo) / (hi - lo)
            return result
        return np.full_like(b, 1.0 if hi > 0 else 0.0)
    if method == "rank":
        if not np.any(b > 0):
            return np.zeros_like(b)
        desc = np.sort(b)[::-1]
        ranks = 1 + np.searchsorted(-desc, -b, side="left")
        result = (RANK_CONSTANT + 1) / (RANK_CONSTANT + ranks)
        return result
    raise ValueError(f"unknown keyword normalisation {method!r}; one of {', '.join(KEYWORD_NORMS)}")


def combine(signals: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """The final score: ``Σ_signal W_signal · value_signal`` (a signal without weight adds 0)."""
    total: np.ndarray | None = None
    for name, value in signals.items():
        part = weights.get(name, 0.0) * np.asarray(value, dtype=np.float64)
        total = part if total is None else total + part
    return total if total is not None else np.zeros(0)


def rank_order(scores: np.ndarray, ids: Sequence[str]) -> np.ndarray:
    """Indices by score descending, ties broken by id ascending: pages never overlap or skip."""
    if len(ids) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.lexsort((np.asarray(ids, dtype=object).astype(str), -np.asarray(scores)))
