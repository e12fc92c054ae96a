"""Scoring formulas, kept as plain numpy so every engine and the tests share them."""

from __future__ import annotations

import numpy as np

from lookalike.documents import unit_mean


def anchor_query(anchor_vectors: np.ndarray) -> np.ndarray:
    """Several anchors become one query: the unit mean of their unit vectors."""
    return unit_mean(anchor_vectors)


def cosine_scores(query: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Cosine similarity of unit candidate rows to a unit query."""
    if candidates.size == 0:
        return np.zeros(0, dtype=np.float32)
    return candidates @ query.astype(np.float32)
