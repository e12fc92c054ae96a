"""The main ANN graph of a vector space: when to (re)build it, the build itself (persisted
after it is installed), and adopting a graph or a matrix saved by another process.

Installing a graph resets the delta graph (``DeltaLifecycle``): the rows changed during the
build wait for the next one. ``AnnLifecycle`` is a mixin of ``VectorSpace``, whose
``__init__`` sets the state declared below.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from lookalike.engines.embedded.ann import AnnIndex
from lookalike.engines.embedded.ann_files import GraphFiles, GraphKey, SavedVectors
from lookalike.engines.embedded.builds import start_build
from lookalike.engines.embedded.delta_lifecycle import DeltaLifecycle
from lookalike.engines.embedded.partitions import Partitions
from lookalike.engines.embedded.scoring import GATHER_BLOCK
from lookalike.projections import Projection

log = logging.getLogger("lookalike.engines.embedded.vectors")  # the space's own logger


class AnnLifecycle(DeltaLifecycle):
    """Building, installing and adopting a space's graph (installed under the owner's lock)."""

    source: str
    model: str
    projection: Projection | None
    mapped: bool
    _pending: set[int] | None
    _build_thread: threading.Thread | None
    build_error: str | None
    builds: int
    adopted_seq: int | None
    graph_seq: int
    parts: Partitions | None
    _pstale: np.ndarray

    def needs_ann(self, total: int) -> bool:
        """Whether a (re)build should start: big enough, and no graph or a too stale one."""
        if total <= self.policy.threshold or self.building or self.build_error:
            return False  # after a failure only an explicit build_ann() tries again
        if self.ann is None or self.ann.dim != self.width:
            return True
        return self._changes_since_build > self.policy.rebuild_share * len(self.ann.rows)

    @property
    def building(self) -> bool:
        return self._build_thread is not None and self._build_thread.is_alive()

    def graph_key(self) -> GraphKey:
        """The identity a persisted graph of this space must carry to be adopted."""
        p = self.projection
        return GraphKey(
            space=self.name,
            source=self.source,
            model=self.model,
            projection=None if p is None else p.tag,
            dim=self.width,
            storage=self.policy.storage,
            m=self.policy.m,
        )

    def build_ann(
        self,
        rows: np.ndarray,
        lock: threading.RLock,
        wait: bool,
        files: GraphFiles | None = None,
        seq: int = -1,
        ords: np.ndarray | None = None,
        row_ords: np.ndarray | None = None,
    ) -> None:
        """Build a graph over ``rows`` (live rows with a vector), in the background or not;
        with ``files``, also persist it as covering change ``seq`` (``ords``: the rows'
        SQLite rowids; ``row_ords``: those of all catalogue rows, to save the matrix too),
        after it is installed: queries never wait for the disk."""
        if self.building:
            return  # joining here could deadlock: the build installs under ``lock``
        self._pending = set()
        self.build_error = None
        dim = self.width
        pol = self.policy
        key = self.graph_key()
        saved = None
        if row_ords is not None:  # rows changed from here on are re-read by whoever maps it
            saved = SavedVectors(self.matrix[:, :dim], self.dims.copy(), row_ords)

        def work() -> None:
            try:
                index = AnnIndex.build(
                    lambda r: self.matrix[r, :dim],
                    rows,
                    dim,
                    pol.m,
                    pol.ef_construction,
                    pol.storage,
                )
            except Exception as exc:
                with lock:
                    self._pending = None
                    self.build_error = f"{type(exc).__name__}: {exc}"
                if wait:
                    raise
                log.warning("ANN build for space %r failed: %s", self.name, exc)
                return  # the space keeps answering exactly
            with lock:
                self._install(index, rows)
                self.builds += 1
                self.graph_seq = seq
            if files is not None and ords is not None and seq >= 0:
                try:
                    meta = files.save(key, seq, index, ords, saved)
                except (OSError, RuntimeError) as exc:  # disk full, read-only folder: serve on
                    log.warning("could not persist the ANN graph of %r: %s", self.name, exc)
                    return
                mapped = files.open_vectors(key, meta) if saved is not None else None
                if mapped is not None:
                    with lock:
                        self._remap(mapped)

        self._build_thread = start_build(f"ann-{self.name}", work, wait)

    def _install(self, index: AnnIndex, rows: np.ndarray) -> None:
        stale = np.ones(len(self._stale), dtype=bool)
        stale[rows] = False
        pending = self._pending or set()
        if pending:
            stale[np.fromiter(pending, dtype=np.int64)] = True
        self._reset_delta()  # rows changed during the build wait for the next delta
        self.delta_error = None
        self._stale = stale
        self._changes_since_build = len(pending)
        self._pending = None
        self.ann = index
        self.sync_delta()

    def adopt_matrix(self, saved: SavedVectors) -> None:
        """Serve from a saved matrix (mapped copy-on-write) instead of one read from SQLite."""
        self.matrix = saved.matrix
        self.dims = saved.dims
        self._stale = np.ones(len(saved.dims), dtype=bool)
        self._pstale = np.ones(len(saved.dims), dtype=bool)
        self._reset_delta()
        self.parts = None
        self.mapped = True

    def _remap(self, saved: SavedVectors) -> None:
        """Swap the private matrix for the one just saved (so the builder shares it too),
        after copying in the rows changed since: only stale rows can differ from the file."""
        if saved.matrix.shape != self.matrix.shape:
            return  # grew meanwhile: stay private until the next saved graph
        rows = np.flatnonzero(self._stale)
        for start in range(0, len(rows), GATHER_BLOCK * 16):
            block = rows[start : start + GATHER_BLOCK * 16]
            new, old = self.matrix[block], saved.matrix[block]
            differ = block[(new != old).any(axis=1) | (self.dims[block] != saved.dims[block])]
            saved.matrix[differ] = self.matrix[differ]  # copy-on-write: only these pages
            saved.dims[differ] = self.dims[differ]
        self.matrix = saved.matrix
        self.dims = saved.dims
        self.mapped = True

    def attach(self, index: AnnIndex, stale_rows: np.ndarray, seq: int) -> None:
        """Adopt a persisted graph; ``stale_rows`` changed after its ``seq`` (scanned exactly)."""
        stale = np.ones(len(self._stale), dtype=bool)
        stale[index.rows] = False
        stale[stale_rows] = True
        self._reset_delta()
        self._stale = stale
        self._changes_since_build = len(stale_rows)
        self.ann = index
        self.adopted_seq = self.graph_seq = seq
        self.sync_delta()  # this process's delta: rebuilt from the rows changed since
