"""One vector space in RAM: a float32 matrix aligned with the catalogue rows, plus ANN.

Exact kNN is one matrix-vector product over the allowed rows and an argpartition. Above
``ann_threshold`` rows an HNSW graph is used for broad filters; narrow filters (fewer than
``min_selectivity`` of the rows) go exact, because HNSW with an unrelated filter loses most
of its recall (0.128 measured) while exact search over a small set is both cheap and perfect.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice

import numpy as np

from lookalike.engines.embedded.ann import AnnIndex
from lookalike.engines.embedded.ann_files import GraphFiles, GraphKey, SavedVectors
from lookalike.engines.embedded.delta import TRAIN_SAMPLE, DeltaIndex
from lookalike.engines.embedded.partitions import Partitions
from lookalike.errors import EngineError
from lookalike.projections import Projection
from lookalike.vectors import unit

GATHER_SHARE = 0.15  # below this share of rows, gather the rows instead of scoring all
GATHER_BLOCK = 512  # rows per block when scoring scattered rows
MAX_EF = 1024
PART_POOL = 512  # codes taken from a partition scan and re-scored exactly (at least 1.5k)
PART_MIN_DENSITY = 0.1  # below this share of a partition's rows, gather the rows instead
DELTA_MIN_ROWS = 1024  # stale rows below which an exact scan is as fast (512-d, BENCHMARKS.md)
DELTA_CHUNK = 32  # rows added to a delta graph at a time (a search waits at most this long)
DELTA_POOL = 64  # candidates at least from the delta graph (k + k/2 for bigger k)
log = logging.getLogger(__name__)


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


def part_pool(k: int) -> int:
    """How many of a partition's best codes are re-scored exactly for a top-``k``."""
    return max(PART_POOL, k + k // 2)


def start_build(name: str, work: Callable[[], None], wait: bool) -> threading.Thread | None:
    """Run a build now (``wait``: its errors raise) or in a daemon thread, which is returned:
    the graph and the partitions are built the same way, queries answering exactly meanwhile."""
    if wait:
        work()
        return None
    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    return thread


def top_k(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best rows by score, best first (ties by row number, for stable output)."""
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
        rows, scores = rows[part], scores[part]
    order = np.lexsort((rows, -scores))
    return rows[order], scores[order]


class VectorSpace:
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
        if ann is None or allowed < self.policy.min_selectivity * total or allowed <= 4 * k:
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

    # -- partitions lifecycle ----------------------------------------------------------------
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

    # -- delta graph lifecycle -------------------------------------------------------------
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

    # -- ANN lifecycle -----------------------------------------------------------------------
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

    def wait(self) -> None:
        """Block until background builds (if any) have finished."""
        while True:  # a graph install starts the delta thread: look again after joining
            threads = (self._build_thread, self._part_thread, self._delta_thread)
            alive = [t for t in threads if t is not None and t.is_alive()]
            if not alive:
                return
            for thread in alive:
                thread.join()
