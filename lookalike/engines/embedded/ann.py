"""faiss HNSW over a frozen set of rows: candidates only, always re-scored exactly.

HNSW cannot update in place, so an index covers the rows alive when it was built; rows
changed afterwards are marked stale by the owning space, hidden from the graph with an
ID selector, and scanned exactly instead. With ``sq8`` storage the graph keeps 8-bit
codes (a quarter of the float32 memory); exact re-scoring against the float32 matrix
restores the ranking of the candidates it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faiss
import numpy as np

from lookalike.errors import EngineError

TRAIN_SAMPLE = 65_536
ADD_CHUNK = 32_768
_faiss: Any = faiss  # the SWIG stubs lack several classes used here


class AnnIndex:
    """An HNSW graph whose labels are positions in ``rows`` (catalogue row numbers)."""

    def __init__(self, index: Any, rows: np.ndarray) -> None:
        self.index = index
        self.rows = rows
        self.dim = int(index.d)
        self.contiguous = bool(len(rows) == 0 or (rows[0] == 0 and rows[-1] == len(rows) - 1))

    @classmethod
    def build(
        cls,
        gather: Callable[[np.ndarray], np.ndarray],
        rows: np.ndarray,
        dim: int,
        m: int = 32,
        ef_construction: int = 128,
        storage: str = "sq8",
    ) -> AnnIndex:
        """Build over ``rows``; ``gather(rows)`` returns their float32 vectors."""
        try:
            if storage == "sq8":
                index = _faiss.IndexHNSWSQ(
                    dim, faiss.ScalarQuantizer.QT_8bit, m, faiss.METRIC_INNER_PRODUCT
                )
                step = max(1, len(rows) // TRAIN_SAMPLE)
                index.train(np.ascontiguousarray(gather(rows[::step])))
            elif storage == "flat":
                index = _faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
            else:
                raise EngineError(f"unknown ANN storage {storage!r}: expected 'sq8' or 'flat'")
            index.hnsw.efConstruction = ef_construction
            for start in range(0, len(rows), ADD_CHUNK):
                index.add(np.ascontiguousarray(gather(rows[start : start + ADD_CHUNK])))
        except RuntimeError as exc:
            raise EngineError(f"faiss HNSW build failed: {exc}") from exc
        return cls(index, rows)

    def search(self, query: np.ndarray, k: int, ef: int, allowed: np.ndarray | None) -> np.ndarray:
        """Candidate rows for ``query``; ``allowed`` is a bool mask over this index's labels."""
        k = min(k, len(self.rows))
        if k <= 0:
            return np.empty(0, dtype=np.int64)
        params = _faiss.SearchParametersHNSW()
        params.efSearch = max(ef, k)
        bitmap = None
        if allowed is not None:
            bitmap = np.packbits(allowed, bitorder="little")
            selector = _faiss.IDSelectorBitmap(len(allowed), _faiss.swig_ptr(bitmap))
            params.sel = selector
        try:
            _, labels = self.index.search(query.reshape(1, -1), k, params=params)
        except RuntimeError as exc:
            raise EngineError(f"faiss HNSW search failed: {exc}") from exc
        labels = labels[0]
        return self.rows[labels[labels >= 0]]
