"""The delta graph of a vector space: the rows changed since its main graph was built.

Below ``delta_min_rows`` stale rows an exact scan of them is as fast as a graph (512-d,
BENCHMARKS.md); from there on they get a small HNSW graph of their own, which ``knn``
searches beside the main one. The delta is fed a chunk at a time (in a thread with
``background``), each row under its newest label: a row changed again hides its older entry
until the newer one is in. A new main graph replaces the delta (``_reset_delta``); rows not
yet in it are scanned exactly, so any failure here only costs speed. ``DeltaLifecycle`` is a
mixin of ``VectorSpace``, whose ``__init__`` sets the state declared below.
"""

from __future__ import annotations

import logging
import threading
from itertools import islice
from typing import TYPE_CHECKING

import numpy as np

from lookalike.engines.embedded.ann import AnnIndex
from lookalike.engines.embedded.builds import start_build
from lookalike.engines.embedded.delta import TRAIN_SAMPLE, DeltaIndex
from lookalike.errors import EngineError

if TYPE_CHECKING:
    from lookalike.engines.embedded.vectors import AnnPolicy

DELTA_MIN_ROWS = 1024  # stale rows below which an exact scan is as fast (512-d, BENCHMARKS.md)
DELTA_CHUNK = 32  # rows added to a delta graph at a time (a search waits at most this long)
log = logging.getLogger("lookalike.engines.embedded.vectors")  # the space's own logger


class DeltaLifecycle:
    """Starting, feeding and dropping a space's delta graph (under the space's ``lock``)."""

    name: str
    policy: AnnPolicy
    matrix: np.ndarray
    dims: np.ndarray
    ann: AnnIndex | None
    lock: threading.RLock
    _stale: np.ndarray
    _changes_since_build: int
    delta: DeltaIndex | None
    _in_delta: np.ndarray
    _delta_label: dict[int, int]
    _delta_todo: dict[int, None]
    _delta_thread: threading.Thread | None
    _delta_busy: bool
    delta_error: str | None

    if TYPE_CHECKING:

        @property
        def width(self) -> int: ...

    def sync_delta(self) -> None:
        """Bring the delta graph up to the rows changed since (under ``lock``): start one
        once ``delta_min_rows`` rows are stale, then add the rows waiting, in a thread a
        chunk at a time (``background``; they are scanned exactly meanwhile) or now."""
        ann = self.ann
        if ann is None or ann.dim != self.width or self.delta_error:
            return
        if self.delta is None:
            if self._changes_since_build < self.policy.delta_min_rows:
                return
            self._start_delta(ann)
        if not self._delta_todo or self._delta_busy:
            return
        if self.policy.background:
            self._delta_busy = True
            self._delta_thread = start_build(f"delta-{self.name}", self._delta_work, False)
        else:
            while self._delta_todo and self._delta_step():
                pass

    def _start_delta(self, ann: AnnIndex) -> None:
        """A fresh delta waiting for every stale row with a vector."""
        dim = self.width
        pol = self.policy
        train = None
        if pol.storage == "sq8":
            step = max(1, len(ann.rows) // TRAIN_SAMPLE)
            train = self.matrix[ann.rows[::step], :dim]
        try:
            delta = DeltaIndex(dim, pol.m, pol.ef_construction, pol.storage, train)
        except EngineError as exc:
            self.delta_error = str(exc)
            log.warning("no delta graph for space %r: %s", self.name, exc)
            return
        self._reset_delta()
        n = len(self._stale)
        todo = np.flatnonzero(self._stale & (self.dims[:n] > 0))
        self._delta_todo = dict.fromkeys(todo.tolist())
        self.delta = delta

    def _reset_delta(self) -> None:
        """No delta: every stale row is scanned exactly (marks first: see ``knn``)."""
        self._in_delta = np.zeros(len(self._stale), dtype=bool)
        self._delta_label = {}
        self._delta_todo = {}
        self.delta = None

    def _delta_step(self) -> bool:
        """Add the next chunk of waiting rows to the delta (called under ``lock``, or by the
        delta thread without it: the add itself runs outside); False when nothing was."""
        with self.lock:
            delta = self.delta
            if delta is None or not self._delta_todo:
                self._delta_busy = False  # under the lock: a later sync starts a new thread
                return False
            take = list(islice(self._delta_todo, DELTA_CHUNK))
            for row in take:
                del self._delta_todo[row]
            rows = np.array(take, dtype=np.int64)
            vectors = self.matrix[rows, : delta.dim]  # a copy, taken under the lock
            labels = delta.claim(rows)
            self._delta_label.update(zip(take, labels.tolist(), strict=True))
        try:
            delta.add(labels, vectors)
        except EngineError as exc:
            with self.lock:
                self.delta_error = str(exc)
                self._delta_busy = False
                if self.delta is delta:
                    self._reset_delta()
            log.warning("delta graph of space %r failed: %s", self.name, exc)
            return False
        with self.lock:
            if self.delta is not delta:
                return True  # replaced meanwhile (a new main graph): nothing to mark
            label_of = self._delta_label
            ok = [i for i, row in enumerate(take) if label_of.get(row) == int(labels[i])]
            delta.validate(labels[ok])  # rows changed again meanwhile stay hidden
            self._in_delta[rows[ok]] = True
        return True

    def _delta_work(self) -> None:
        try:
            while self._delta_step():
                pass
        except Exception as exc:  # the rows waiting stay exact: safe, only slower
            with self.lock:
                self.delta_error = f"{type(exc).__name__}: {exc}"
                self._delta_busy = False
            log.warning("delta graph of space %r failed: %s", self.name, exc)
