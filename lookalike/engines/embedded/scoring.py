"""Scoring helpers shared by a space's exact, graph and partitioned searches."""

from __future__ import annotations

import numpy as np

GATHER_BLOCK = 512  # rows per block when scoring scattered rows


def top_k(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best rows by score, best first (ties by row number, for stable output)."""
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
        rows, scores = rows[part], scores[part]
    order = np.lexsort((rows, -scores))
    return rows[order], scores[order]
