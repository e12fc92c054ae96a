"""The tuned head's vectors as one matrix, read from the spaces the engine serves (no torch).

``lookalike tune`` registers one projection per tower (``tuned`` from ``image``,
``tuned_color`` from ``color``), each with its mix weight in ``info["mix"]``; the head's own
vector is ``[√m_1 t_1, √m_2 t_2] / √Σm``, whose cosines are what the head was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lookalike.engines import Engine

TUNED_SPACES = ("tuned", "tuned_color")


def has_head(engine: Engine) -> bool:
    """Whether a tuned head serves this engine's products."""
    return engine.projection(TUNED_SPACES[0]) is not None


def head_matrix(engine: Engine, ids: Sequence[str]) -> np.ndarray:
    """The head's unit vectors of ``ids`` in that order (zero rows for products without)."""
    parts, mixes = [], []
    for space in TUNED_SPACES:
        projection = engine.projection(space)
        if projection is None:
            continue
        parts.append(np.asarray(engine.vector_matrix(list(ids), space), dtype=np.float32))
        mixes.append(float(projection.info.get("mix", 1.0)))
    if not parts:
        return np.zeros((len(ids), 0), dtype=np.float32)
    roots = np.sqrt(np.array(mixes) / sum(mixes))
    return np.hstack([r * p for r, p in zip(roots, parts, strict=True)]).astype(np.float32)
