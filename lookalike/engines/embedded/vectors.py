"""One vector space in RAM: a float32 matrix aligned with the catalogue rows, plus ANN.

Exact kNN is one matrix-vector product over the allowed rows and an argpartition. Above
``ann_threshold`` rows an HNSW graph is used for broad filters; narrow filters (fewer than
``min_selectivity`` of the rows, and fewer than ``GRAPH_MIN_ROWS``) go exact, because HNSW
with an unrelated filter over a small set loses much of its recall (0.128 measured with an
early graph, 0.77 for 5k of 100k rows now) while exact search over a small set is both
cheap and perfect; a narrow filter on a partitioned field's values scans its partitions.
This module holds the storage and the searches; the graph's, the delta graph's and the
partitions' lifecycles are mixins (``ann_lifecycle``, ``delta_lifecycle``,
``partition_lifecycle``), the partitioned search with the partitions.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from lookalike.engines.embedded.ann import AnnIndex
from lookalike.engines.embedded.ann_lifecycle import AnnLifecycle
from lookalike.engines.embedded.delta import DeltaIndex
from lookalike.engines.embedded.delta_lifecycle import DELTA_MIN_ROWS
from lookalike.engines.embedded.partition_lifecycle import PartitionLifecycle, part_pool
from lookalike.engines.embedded.partitions import Partitions
from lookalike.engines.embedded.scoring import GATHER_BLOCK, top_k
from lookalike.projections import Projection
from lookalike.vectors import unit

__all__ = ["DELTA_MIN_ROWS", "AnnPolicy", "VectorSpace"]

GATHER_SHARE = 0.15  # below this share of rows, gather the rows instead of scoring all
MAX_EF = 1024
# A filtered set this big goes through the graph whatever its share of the rows: at 1M,
# colour filters keeping 10% and 20% of the rows had recall@50 0.987 and 0.991 through the
# graph in 4.3-4.7 ms, against 35-72 ms exact; at 100k, 5k and 10k rows through the graph
# had only 0.77 and 0.94 (BENCHMARKS.md), so small sets stay exact.
GRAPH_MIN_ROWS = 50_000
DELTA_POOL = 64  # candidates at least from the delta graph (k + k/2 for bigger k)


@dataclass
class AnnPolicy:
    """When and how the ANN index is used (engine options)."""

    threshold: int = 50_000
    min_selectivity: float = 0.2
    ef_search: int = 256
    m: int = 32
    ef_construction: int = 128  # 64 gave recall@50 0.87 at 1M, 128 gives 0.98 (BENCHMARKS.md)
    rebuild_share: float = 0.1
    storage: str = "sq8"
    background: bool = True
    persist: bool = True  # write built graphs to <data_dir>/ann/ and adopt them on load
    partition_fields: tuple[str, ...] = ("category",)  # keyword fields with per-value codes
    partition_min_rows: int = 4096  # filtered sets smaller than this are gathered exactly
    partition_codes: str = "sq8"  # 8-bit scalar codes, or "pq4" (fast-scan: faster, rougher)
    delta_min_rows: int = DELTA_MIN_ROWS  # stale rows from which they get a delta graph


class VectorSpace(AnnLifecycle, PartitionLifecycle):
    """The vectors of one space, row-aligned with the catalogue: the stored vectors of
    ``source`` (the space itself unless a projection derives it) under model tag ``model``."""

    def __init__(self, name: str, model: str, policy: AnnPolicy, source: str | None = None) -> None:
        self.name = name
        self.source = source or name
        self.model = model
        self.policy = policy
        self.matrix = np.zeros((0, 0), dtype=np.float32)
        self.dims = np.zeros(0, dtype=np.int32)  # 0: the row has no vector in this space
        self.ann: AnnIndex | None = None
        self._stale = np.zeros(0, dtype=bool)  # rows the ANN graph must not answer for
        self.lock = threading.RLock()  # the owner's lock (the snapshot's), for delta adds
        self.delta: DeltaIndex | None = None  # stale rows in a small graph of their own
        self._in_delta = np.zeros(0, dtype=bool)  # stale rows a valid delta entry serves
        self._delta_label: dict[int, int] = {}  # row -> its newest delta label
        self._delta_todo: dict[int, None] = {}  # rows to add to the delta, oldest first
        self._delta_thread: threading.Thread | None = None
        self._delta_busy = False  # a delta thread is adding (cleared as it finds no more)
        self.delta_error: str | None = None
        self._changes_since_build = 0
        self._pending: set[int] | None = None  # rows changed while a build runs
        self._build_thread: threading.Thread | None = None
        self.build_error: str | None = None  # set when a background build failed
        self.builds = 0  # graphs this process built for the space (adopted ones do not count)
        self.adopted_seq: int | None = None  # seq of the persisted graph adopted, if any
        self.mapped = False  # the matrix is a copy-on-write mapping of a saved one
        self.graph_seq = -1  # the change seq the graph covers (-1: none, or not known)
        # A projection of this model: rows hold projected vectors, raw queries are projected too.
        self.projection: Projection | None = None
        self.parts: Partitions | None = None  # per-value 8-bit codes (filtered scans)
        self._pstale = np.zeros(0, dtype=bool)  # rows the partitions must not answer for
        self._pchanges = 0
        self._ppending: set[int] | None = None  # rows changed while partitions build
        self._part_thread: threading.Thread | None = None
        self.part_error: str | None = None
        self.part_builds = 0

    def serving(self, vector: np.ndarray) -> np.ndarray:
        """A raw vector of the source model in the form the rows hold (projected, if any)."""
        p = self.projection
        if p is not None and len(vector) == p.input_dim:
            return p.apply(vector)[0]
        return vector

    # -- storage -----------------------------------------------------------------------------
    def _reserve(self, rows: int, dim: int) -> None:
        cap, width = self.matrix.shape
        if rows <= cap and dim <= width:
            return
        new_cap = max(cap, 1024)
        while new_cap < rows:
            new_cap *= 2
        grown = np.zeros((new_cap, max(width, dim)), dtype=np.float32)
        grown[:cap, :width] = self.matrix
        self.matrix = grown
        self.mapped = False  # outgrew the saved matrix: private until the next saved graph
        self.dims = np.concatenate([self.dims, np.zeros(new_cap - cap, dtype=np.int32)])
        self._stale = np.concatenate([self._stale, np.ones(new_cap - cap, dtype=bool)])
        self._in_delta = np.concatenate([self._in_delta, np.zeros(new_cap - cap, dtype=bool)])
        self._pstale = np.concatenate([self._pstale, np.ones(new_cap - cap, dtype=bool)])

    def reserve_rows(self, n: int) -> None:
        """Make room for ``n`` catalogue rows (rows without vectors stay empty)."""
        self._reserve(n, 0)

    @property
    def width(self) -> int:
        return int(self.matrix.shape[1])

    def load(self, items: Iterable[tuple[int, np.ndarray]]) -> None:
        """Bulk load ``(row, vector)`` pairs."""
        for row, vec in items:
            self._reserve(row + 1, len(vec))
            self.matrix[row, : len(vec)] = vec
            self.matrix[row, len(vec) :] = 0.0
            self.dims[row] = len(vec)

    def load_block(self, rows: np.ndarray, block: np.ndarray) -> None:
        """Bulk load a ``[len(rows), d]`` block of same-dimension vectors."""
        if len(rows) == 0:
            return
        self._reserve(int(rows.max()) + 1, block.shape[1])
        self.matrix[rows, : block.shape[1]] = block
        self.matrix[rows, block.shape[1] :] = 0.0
        self.dims[rows] = block.shape[1]

    def set(self, row: int, vec: np.ndarray | None) -> None:
        """Replace one row's vector (None: the product has none any more)."""
        self._reserve(row + 1, 0 if vec is None else len(vec))
        if vec is None:
            self.matrix[row] = 0.0
            self.dims[row] = 0
        else:
            self.matrix[row, : len(vec)] = vec
            self.matrix[row, len(vec) :] = 0.0
            self.dims[row] = len(vec)
        if self._pending is not None:
            self._pending.add(row)
        if self._ppending is not None:
            self._ppending.add(row)
        self._stale[row] = True
        self._pstale[row] = True
        self._changes_since_build += 1
        self._pchanges += 1
        self._in_delta[row] = False  # its delta entry (if any) holds the older vector
        label = self._delta_label.pop(row, None)
        if label is not None and self.delta is not None:
            self.delta.invalidate(label)
        if vec is None:
            self._delta_todo.pop(row, None)
        elif self.delta is not None:
            self._delta_todo.pop(row, None)
            self._delta_todo[row] = None  # to the back: its newest vector is added

    def has(self, n: int) -> np.ndarray:
        return self.dims[:n] > 0 if len(self.dims) >= n else np.zeros(n, dtype=bool)

    def gather(self, rows: np.ndarray) -> np.ndarray:
        return self.matrix[rows]

    # -- search ------------------------------------------------------------------------------
    def query_vector(self, vector: np.ndarray) -> np.ndarray | None:
        """The query (already in serving form) as a unit row of the matrix width, or None."""
        q = np.zeros(self.width, dtype=np.float32)
        d = min(len(vector), self.width)
        q[:d] = vector[:d]
        return unit(q) if q.any() else None

    def exact(self, q: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k among the rows where ``cand`` is True."""
        rows = np.flatnonzero(cand)
        if len(rows) == 0:
            return rows, np.empty(0, dtype=np.float32)
        if len(rows) < GATHER_SHARE * len(cand):
            scores = self._gather_scores(rows, q)
        else:
            scores = (self.matrix[: len(cand), : len(q)] @ q)[rows]
        return top_k(rows, scores, k)

    def _gather_scores(self, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Scores of scattered rows, gathered in cache-sized blocks (no big temporary)."""
        # One matrix at the query's width: searches run outside the snapshot lock, and a
        # write may meanwhile grow the matrix (more rows, or a wider attribute space).
        matrix = self.matrix[:, : len(q)]
        if len(rows) <= GATHER_BLOCK:
            return matrix[rows] @ q
        scores = np.empty(len(rows), dtype=np.float32)
        buf = np.empty((GATHER_BLOCK, len(q)), dtype=np.float32)
        for start in range(0, len(rows), GATHER_BLOCK):
            block = rows[start : start + GATHER_BLOCK]
            np.take(matrix, block, axis=0, out=buf[: len(block)])
            scores[start : start + len(block)] = buf[: len(block)] @ q
        return scores

    def knn(
        self,
        q: np.ndarray,
        cand: np.ndarray,
        k: int,
        total: int,
        tokens: tuple[str, ...] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows among ``cand``; ``total`` is how many rows the space holds; ``tokens``:
        values of a partitioned field that every candidate holds one of (the filter's category)."""
        allowed = int(np.count_nonzero(cand))
        ann = self.ann
        if ann is not None and ann.dim != self.width:
            ann = None  # the space grew wider (attribute vocabulary); wait for a rebuild
        narrow = allowed < self.policy.min_selectivity * total
        if (
            ann is None
            or allowed <= 4 * k
            or (narrow and (allowed < GRAPH_MIN_ROWS or tokens))  # tokens: the partitions
        ):
            # Partitions pay where the set is big and the re-scored pool is a small part of it.
            if tokens and allowed >= max(self.policy.partition_min_rows, 4 * part_pool(k)):
                best = self._partitioned(q, cand, k, tokens)
                if best is not None:
                    return best
            return self.exact(q, cand, k)
        n = len(cand)
        stale = self._stale[:n]
        # Delta before its marks (installs swap the marks first): marks of a newer delta
        # than the one searched would hide rows from both; re-read to catch a swap between.
        delta = self.delta
        in_delta = self._in_delta[:n]
        if delta is None or delta is not self.delta or delta.dim != len(q) or len(in_delta) < n:
            delta = None
        if ann.contiguous:  # labels are rows 0..m-1: slicing instead of a 1M-index gather
            m = len(ann.rows)
            in_graph = cand[:m] & ~stale[:m]
        else:
            in_graph = cand[ann.rows] & ~stale[ann.rows]
        # The whole search queue comes back as candidates: re-scoring ef rows exactly costs
        # far less than the graph walk, and repairs the 8-bit codes' ranking errors.
        # A filter hides part of the graph from the result queue: widen the walk to match.
        pool = max(self.policy.ef_search, 2 * k)
        share = allowed / max(total, 1)
        ef = min(int(pool / max(share, self.policy.min_selectivity)), MAX_EF)
        found = ann.search(q, pool, ef, None if in_graph.all() else in_graph)
        if delta is None:
            extra = np.flatnonzero(cand & stale)
            rows = np.unique(np.concatenate([found, extra]))
        else:  # stale rows not (yet) in the delta graph are scanned exactly
            # The delta is small: a pool of the main graph's width would walk most of it
            # (at 18k entries, pool 256: 3.3 ms; 64: 1.7 ms; the same recall, BENCHMARKS.md).
            dpool = max(k + k // 2, DELTA_POOL)
            def_ = min(int(dpool / max(share, self.policy.min_selectivity)), MAX_EF)
            extra = np.flatnonzero(cand & stale & ~in_delta)
            rows = np.unique(np.concatenate([found, delta.search(q, dpool, def_, cand), extra]))
        if len(found) < min(k, int(np.count_nonzero(in_graph))):
            return self.exact(q, cand, k)
        return top_k(rows, self._gather_scores(rows, q), k)

    def wait(self) -> None:
        """Block until background builds (if any) have finished."""
        while True:  # a graph install starts the delta thread: look again after joining
            threads = (self._build_thread, self._part_thread, self._delta_thread)
            alive = [t for t in threads if t is not None and t.is_alive()]
            if not alive:
                return
            for thread in alive:
                thread.join()
