"""Which products an analysis looks at: the whole catalogue or a filtered part, with vectors."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from lookalike.engines import Engine
from lookalike.errors import InvalidInput
from lookalike.filters import Filter
from lookalike.vectors import unit_rows

MAX_PRODUCTS = 1_000_000


@dataclass(frozen=True)
class Population:
    """Product ids and their visual vectors (one unit row per id, same order)."""

    ids: list[str]
    matrix: np.ndarray  # float32 [n, dim]

    def digest(self) -> str:
        """A hash of the ids and the vectors: a cache key that changes with the catalogue."""
        h = hashlib.blake2b(digest_size=16)
        h.update("\x1f".join(self.ids).encode())
        h.update(np.ascontiguousarray(self.matrix).tobytes())
        return h.hexdigest()


def select_ids(
    engine: Engine, filters: Filter | None = None, limit: int | None = None
) -> list[str]:
    """Every product id, or those matching ``filters``, sorted; at most ``limit`` of them."""
    if limit is not None and limit < 1:
        raise InvalidInput(f"limit must be at least 1, got {limit}")
    if filters is None:
        ids = engine.all_ids()
    else:
        cap = limit if limit is not None else MAX_PRODUCTS
        ids = sorted(c.id for c in engine.keyword_search(None, filters, cap))
    return ids[:limit] if limit is not None else ids


def visual_population(
    engine: Engine, filters: Filter | None = None, limit: int | None = None
) -> Population:
    """The selected products that have a visual vector (products without one are left out)."""
    ids = select_ids(engine, filters, limit)
    if not ids:
        return Population([], np.zeros((0, 0), dtype=np.float32))
    matrix = np.asarray(engine.vector_matrix(ids, "image"), dtype=np.float32)
    keep = np.linalg.norm(matrix, axis=1) > 0 if matrix.size else np.zeros(len(ids), bool)
    kept = [pid for pid, ok in zip(ids, keep.tolist(), strict=True) if ok]
    return Population(kept, unit_rows(matrix[keep], dtype=None))
