"""A small in-RAM HNSW graph of the rows changed or added since the main graph was built.

The main graph is mapped read-only from disk (and faiss HNSW cannot remove or replace an
entry anyway), so the rows that became stale after it were all scanned exactly on every
query: up to ``rebuild_share`` of the catalogue (100k rows at 1M) before a rebuild. The
delta graph takes those rows with ``add()`` as they change, and is searched beside the main
graph; both give candidates only, re-scored exactly against the float32 matrix.

faiss HNSW cannot remove either, so a row changed twice leaves its older entry in the
graph: ``valid`` hides it (an ID selector, like the main graph's stale rows), and
``rows[label]`` maps labels back to catalogue rows. A delta is per process, never
persisted: it is rebuilt from the stale rows when a graph is adopted, and replaced when a
new main graph is installed. faiss ``add`` must not run beside a search of the same index:
``lock`` lets searches run together and an add run alone (adds come a chunk at a time, so a
search waits at most one chunk's add).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faiss
import numpy as np

from lookalike.errors import EngineError

_faiss: Any = faiss
TRAIN_SAMPLE = 16_384  # matrix rows sampled to train an 8-bit delta's quantiser


class SharedLock:
    """Many readers or one writer; a waiting writer holds new readers back."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writing = False
        self._waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class DeltaIndex:
    """An HNSW graph grown with ``add``; label ``i`` holds catalogue row ``rows[i]``."""

    def __init__(self, dim: int, m: int, ef_construction: int, storage: str, train: Any) -> None:
        """``train``: a float32 sample of the space's rows (an 8-bit quantiser's ranges)."""
        try:
            if storage == "sq8":
                index = _faiss.IndexHNSWSQ(
                    dim, faiss.ScalarQuantizer.QT_8bit, m, faiss.METRIC_INNER_PRODUCT
                )
                index.train(np.ascontiguousarray(train, dtype=np.float32))
            elif storage == "flat":
                index = _faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
            else:
                raise EngineError(f"unknown ANN storage {storage!r}: expected 'sq8' or 'flat'")
        except RuntimeError as exc:
            raise EngineError(f"faiss HNSW delta failed: {exc}") from exc
        index.hnsw.efConstruction = ef_construction
        self.index = index
        self.dim = dim
        self.rows = np.zeros(1024, dtype=np.int64)
        self.valid = np.zeros(1024, dtype=bool)
        self.claimed = 0  # labels handed out
        self.size = 0  # labels in the graph
        self.live = 0  # labels valid
        self.lock = SharedLock()

    def claim(self, rows: np.ndarray) -> np.ndarray:
        """Labels for ``rows``, to be added next (under the owner's lock: ``valid`` only
        changes there, so growing it here cannot lose a mark)."""
        start = self.claimed
        end = start + len(rows)
        if end > len(self.rows):
            cap = max(2 * len(self.rows), end)
            self.rows = np.concatenate([self.rows, np.zeros(cap - len(self.rows), np.int64)])
            self.valid = np.concatenate([self.valid, np.zeros(cap - len(self.valid), bool)])
        self.rows[start:end] = rows
        self.claimed = end
        return np.arange(start, end, dtype=np.int64)

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Add the vectors of claimed ``labels`` (in claim order; not valid until the owner
        validates them); searches wait meanwhile."""
        if len(labels) == 0:
            return
        with self.lock.write():
            if int(labels[0]) != self.size:
                raise EngineError("delta labels added out of order")
            try:
                self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
            except RuntimeError as exc:
                raise EngineError(f"faiss HNSW delta add failed: {exc}") from exc
            self.size = int(labels[-1]) + 1

    def validate(self, labels: np.ndarray) -> None:
        self.valid[labels] = True
        self.live += len(labels)

    def invalidate(self, label: int) -> None:
        if self.valid[label]:
            self.valid[label] = False
            self.live -= 1

    def search(self, query: np.ndarray, k: int, ef: int, cand: np.ndarray) -> np.ndarray:
        """Candidate rows among the valid labels whose row ``cand`` allows (rows past
        ``len(cand)`` were added after the query's mask: not allowed)."""
        with self.lock.read():
            size = self.size
            rows = self.rows[:size]
            allowed = self.valid[:size].copy()
            inside = rows < len(cand)
            allowed[inside] &= cand[rows[inside]]
            allowed[~inside] = False
            hits = int(np.count_nonzero(allowed))
            k = min(k, hits)
            if k <= 0:
                return np.empty(0, dtype=np.int64)
            if hits <= k:  # the whole allowed delta is the pool: no walk needed
                return rows[allowed]
            params = _faiss.SearchParametersHNSW()
            params.efSearch = max(ef, k)
            bitmap = np.packbits(allowed, bitorder="little")
            params.sel = _faiss.IDSelectorBitmap(size, _faiss.swig_ptr(bitmap))
            try:
                _, labels = self.index.search(query.reshape(1, -1), k, params=params)
            except RuntimeError as exc:
                raise EngineError(f"faiss HNSW delta search failed: {exc}") from exc
            labels = labels[0]
            return rows[labels[labels >= 0]]
