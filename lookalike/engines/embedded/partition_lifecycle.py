"""The per-value partitions of a vector space: the filtered search they answer, and their
(re)builds.

A filter on one value of a partitioned field (the category) keeps a scattered share of the
rows; ``_partitioned`` scans that value's codes contiguously and re-scores the best pool
exactly, plus an exact scan of the candidates the partitions do not cover. Rows changed
since a build are marked stale and scanned exactly; past ``rebuild_share`` of them
``needs_partitions`` asks for a rebuild, which runs in the background or not.
``PartitionLifecycle`` is a mixin of ``VectorSpace``, whose ``__init__`` sets the state
declared below.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import numpy as np

from lookalike.engines.embedded.builds import start_build
from lookalike.engines.embedded.partitions import Partitions
from lookalike.engines.embedded.scoring import top_k

if TYPE_CHECKING:
    from lookalike.engines.embedded.vectors import AnnPolicy

PART_POOL = 512  # codes taken from a partition scan and re-scored exactly (at least 1.5k)
PART_MIN_DENSITY = 0.1  # below this share of a partition's rows, gather the rows instead
log = logging.getLogger("lookalike.engines.embedded.vectors")  # the space's own logger


def part_pool(k: int) -> int:
    """How many of a partition's best codes are re-scored exactly for a top-``k``."""
    return max(PART_POOL, k + k // 2)


class PartitionLifecycle:
    """Searching and (re)building a space's partitions (installed under the owner's lock)."""

    name: str
    policy: AnnPolicy
    matrix: np.ndarray
    parts: Partitions | None
    _pstale: np.ndarray
    _pchanges: int
    _ppending: set[int] | None
    _part_thread: threading.Thread | None
    part_error: str | None
    part_builds: int

    if TYPE_CHECKING:

        @property
        def width(self) -> int: ...

        def _gather_scores(self, rows: np.ndarray, q: np.ndarray) -> np.ndarray: ...

    def _partitioned(
        self, q: np.ndarray, cand: np.ndarray, k: int, tokens: tuple[str, ...]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Top-k among ``cand`` from the partitions of ``tokens`` plus an exact scan of the
        candidates they do not cover (changed or added since, or filed under another value
        then); None where the partitions cannot answer well (the exact scan does)."""
        # Stale marks first: an install swaps the partitions before the marks, so marks read
        # before partitions are those of the same build or an older one (a superset: safe).
        n = len(cand)
        pstale = self._pstale[:n]
        parts = self.parts
        if parts is None or parts.dim != len(q) or any(t not in parts.members for t in tokens):
            return None
        if len(pstale) < n:
            return None
        pool = part_pool(k)
        found: list[np.ndarray] = []
        for tok in tokens:
            members = parts.members[tok]
            members = members[members < n]
            ok = cand[members] & ~pstale[members]
            hits = int(np.count_nonzero(ok))
            if hits == 0:
                continue
            if hits < PART_MIN_DENSITY * len(members):
                return None  # the other filters keep few of this value's rows: gather them
            want = min(len(members), -(-pool * len(members) // hits))
            local = parts.scan(tok, q, want)
            local = local[local < len(members)]
            kept = local[ok[local]]
            if len(kept) < min(k, hits):
                return None  # the other filters drop the nearest rows: too shallow a pool
            found.append(members[kept])
        extra = cand & (pstale | ~parts.covered(tokens, n))
        rows = np.unique(np.concatenate([*found, np.flatnonzero(extra)]))
        return top_k(rows, self._gather_scores(rows, q), k)

    def needs_partitions(self, total: int) -> bool:
        """Whether per-value partitions should be (re)built: a big space with none, a wider
        one, or one changed by more than ``rebuild_share`` since."""
        pol = self.policy
        if not pol.partition_fields or total <= pol.threshold:
            return False
        if self.part_building or self.part_error:
            return False
        parts = self.parts
        if parts is None or parts.dim != self.width:
            return True
        return self._pchanges > pol.rebuild_share * max(parts.n, 1)

    @property
    def part_building(self) -> bool:
        return self._part_thread is not None and self._part_thread.is_alive()

    def build_partitions(
        self, members: dict[str, np.ndarray], n: int, lock: threading.RLock, wait: bool
    ) -> None:
        """Encode the rows of each value (``members``: token -> rows of the first ``n``
        catalogue rows) into partitions, in the background or not; queries answer exactly
        until they are installed."""
        if self.part_building:
            return
        self._ppending = set()
        self.part_error = None
        dim = self.width
        matrix = self.matrix

        def work() -> None:
            try:
                parts = Partitions.build(matrix, members, n, dim, self.policy.partition_codes)
            except Exception as exc:
                with lock:
                    self._ppending = None
                    self.part_error = f"{type(exc).__name__}: {exc}"
                if wait:
                    raise
                log.warning("partition build for space %r failed: %s", self.name, exc)
                return
            with lock:
                stale = np.ones(len(self._pstale), dtype=bool)
                stale[:n] = False
                pending = self._ppending or set()
                if pending:
                    stale[np.fromiter(pending, dtype=np.int64)] = True
                self.parts = parts  # before the marks: see _partitioned
                self._pstale = stale
                self._pchanges = len(pending)
                self._ppending = None
                self.part_builds += 1

        self._part_thread = start_build(f"parts-{self.name}", work, wait)
