"""The one place vectors are normalised: every stored, queried and compared vector is unit length.

Zero vectors stay zero (a product without a signal scores 0, never NaN). ``dtype`` is the
precision the arithmetic runs in; callers that must agree bit for bit pass the same one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DType = Any  # a numpy dtype, or None to keep the input's


def unit(vector: Any, dtype: DType = np.float32) -> np.ndarray:
    """``v / ‖v‖`` (a zero vector stays zero)."""
    v = np.asarray(vector, dtype=dtype)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def unit_rows(matrix: Any, dtype: DType = np.float32, trust_unit: bool = False) -> np.ndarray:
    """Every row scaled to unit length (zero rows stay zero).

    ``trust_unit``: when every row already is of unit length (what engines store), return the
    matrix as it is, without a copy (re-scoring a window on every query).
    """
    m = np.asarray(matrix, dtype=dtype)
    if m.ndim == 1:
        m = m[None, :]
    if trust_unit:
        lengths = np.sqrt(np.einsum("ij,ij->i", m, m))
        if np.all((lengths == 0) | (np.abs(lengths - 1.0) < 1e-6)):
            return m
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    out: np.ndarray = np.divide(m, norms, out=np.zeros_like(m), where=norms > 0)
    return out


def unit_mean(
    rows: Any, weights: Sequence[float] | np.ndarray | None = None, dtype: DType = np.float32
) -> np.ndarray:
    """The normalised (weighted) mean of row vectors: ``Σ ŵ_j a_j / ‖Σ ŵ_j a_j‖``.

    A product's visual vector from its images, and several anchors as one k-NN query.
    """
    a = np.asarray(rows, dtype=dtype)
    if weights is None:
        return unit(a.mean(axis=0), dtype)
    w = np.asarray(weights, dtype=dtype)
    return unit((w[:, None] * a).sum(axis=0) / w.sum(), dtype)


def anchor_query(anchor_vectors: Any, weights: Any = None) -> np.ndarray:
    """Several anchors as one k-NN query: their weighted unit mean, in float32."""
    a = np.asarray(anchor_vectors, dtype=np.float64)
    w = np.ones(len(a)) if weights is None else weights
    return unit_mean(a, w, dtype=np.float64).astype(np.float32)
