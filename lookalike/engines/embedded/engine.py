"""EmbeddedEngine: SQLite as the source of truth, tantivy and numpy/faiss derived from it.

No server: every process (API workers, indexing workers, CLI) opens the same data
directory. Writes go to SQLite only; each process follows the change log to keep its own
derived state (keyword index on disk, shared; vector snapshot per process, its matrix and
HNSW graphs mapped from files under ``ann/`` that the first process to build them saves) in
step.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from lookalike.documents import Candidate, Document, Product
from lookalike.engines.base import Engine, Provenance, UpsertResult
from lookalike.engines.embedded.ann_files import GraphFiles
from lookalike.engines.embedded.catalog import Catalog
from lookalike.engines.embedded.filtering import Compiled, compile_filter, required_tokens
from lookalike.engines.embedded.keyword import KeywordIndex
from lookalike.engines.embedded.rows import IMAGE_SPACE, prepare_batch
from lookalike.engines.embedded.snapshot import Snapshot
from lookalike.engines.embedded.store import Store, active_models_in, projection_state
from lookalike.engines.embedded.vectors import DELTA_MIN_ROWS, AnnPolicy, VectorSpace
from lookalike.errors import EngineError, InvalidInput
from lookalike.filters import Filter
from lookalike.projections import Projection, check_registrable

DB_NAME = "lookalike.db"
PADDED_SPACES = ("attributes",)  # spaces whose dimension grows with a vocabulary
SNAPSHOT_FETCH_MIN = 32  # vectors() for more ids than this loads the space into RAM


def _query_vector(vector: object) -> np.ndarray:
    try:
        vec = np.asarray(vector, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"query vector is not numeric: {exc}") from exc
    if vec.ndim != 1 or vec.shape[0] == 0:
        raise InvalidInput(f"query vector must be 1-d and non-empty, got shape {vec.shape}")
    if not np.isfinite(vec).all():
        raise InvalidInput("query vector contains NaN or infinity")
    return vec


class EmbeddedEngine(Engine):
    """The serverless engine: one directory, many processes.

    Options: ``ann_threshold`` (rows above which a space gets an HNSW index),
    ``busy_timeout`` (seconds a writer waits for SQLite or the keyword-index lock),
    ``ann_min_selectivity`` (filters keeping a smaller share of rows are searched exactly),
    ``ann_ef_search``, ``ann_ef_construction`` (the build's search width: graph quality
    against build time; for graphs built from then on, a saved graph is adopted as built),
    ``ann_storage`` (``sq8`` or ``flat``), ``ann_background`` (build
    the graph in a thread and answer exactly meanwhile, instead of blocking the query) and
    ``ann_persist`` (write built graphs to ``<data_dir>/ann/`` and memory-map them in every
    process that loads the space, instead of each process building its own),
    ``ann_delta_min_rows`` (rows changed since the graph was built, from which this process
    adds them to a small delta graph of its own instead of scanning them exactly),
    ``partition_fields`` (keyword fields whose values get contiguous 8-bit copies of their
    rows' vectors above ``ann_threshold``, so a filter on one value scans them instead of
    gathering scattered rows, and whose values order the keyword index's documents when it
    is rebuilt, so a keyword search filtered on one value skips the other values' postings;
    ``()`` turns both off) and ``partition_min_rows`` (filtered
    sets smaller than this are gathered and scored exactly instead), ``partition_codes``
    (``sq8``: 8-bit scalar codes, a quarter of the float32 row, answers equal to exact in
    every measurement; ``pq4``: 4-bit fast-scan product quantiser, 1/64 of the row and ~15x
    faster to scan, but its pool of candidates misses true neighbours on noisy data).
    """

    name = "embedded"

    def __init__(
        self,
        data_dir: Path,
        *,
        ann_threshold: int = 50_000,
        busy_timeout: float = 30.0,
        ann_min_selectivity: float = 0.2,
        ann_ef_search: int = 256,
        ann_ef_construction: int = 128,
        ann_storage: str = "sq8",
        ann_background: bool = True,
        ann_persist: bool = True,
        ann_delta_min_rows: int = DELTA_MIN_ROWS,
        partition_fields: Sequence[str] = ("category",),
        partition_min_rows: int = 4096,
        partition_codes: str = "sq8",
    ) -> None:
        self.data_dir = Path(data_dir)
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EngineError(f"cannot create data directory {self.data_dir}: {exc}") from exc
        if partition_codes not in ("pq4", "sq8"):
            raise EngineError(f"unknown partition_codes {partition_codes!r}: expected pq4 or sq8")
        if ann_storage not in ("sq8", "flat"):
            raise EngineError(f"unknown ann_storage {ann_storage!r}: expected 'sq8' or 'flat'")
        self.policy = AnnPolicy(
            threshold=int(ann_threshold),
            min_selectivity=float(ann_min_selectivity),
            ef_search=int(ann_ef_search),
            ef_construction=int(ann_ef_construction),
            storage=ann_storage,
            background=bool(ann_background),
            persist=bool(ann_persist),
            delta_min_rows=int(ann_delta_min_rows),
            partition_fields=tuple(partition_fields),
            partition_min_rows=int(partition_min_rows),
            partition_codes=str(partition_codes),
        )
        self.store = Store(self.data_dir / DB_NAME, busy_timeout=float(busy_timeout))
        self.keyword = KeywordIndex(
            self.data_dir, self.store, float(busy_timeout), self.policy.partition_fields
        )
        self.snapshot = Snapshot(self.store, self.policy, GraphFiles(self.data_dir))
        self._rows_memo: tuple[Catalog, int, tuple[str, ...], np.ndarray] | None = None

    def __enter__(self) -> EmbeddedEngine:
        return self

    # -- blue/green ----------------------------------------------------------------------------
    @property
    def location(self) -> str:
        return str(self.data_dir)

    def begin_rebuild(self, models: dict[str, str]) -> EmbeddedEngine:
        """A new versioned folder beside ``data_dir``; ``data_dir`` becomes a symlink to the live
        one (the first time, the folder is renamed under its open files, which stay valid)."""
        live = self.data_dir.absolute()
        stamp = time.strftime("%Y%m%d%H%M%S")
        if live.exists() and not live.is_symlink():
            first = live.with_name(f"{live.name}.v{stamp}-0")
            os.rename(live, first)
            os.symlink(first.name, live)
        green = EmbeddedEngine(
            live.with_name(f"{live.name}.v{stamp}"), ann_threshold=self.policy.threshold
        )
        for p in self.projections().values():  # as on OpenSearch: projections outlive a rebuild,
            green.store.set_projection(p, lambda active: None)  # served once models fit again
        return green

    def promote(self, green: Engine, keep_old: bool = False) -> list[str]:
        """Replace the ``data_dir`` symlink with one to ``green``'s folder (``os.replace`` is
        atomic: readers see the old folder or the new one). Old folders are kept."""
        live = self.data_dir.absolute()
        previous = [os.readlink(live)] if live.is_symlink() else []
        tmp = live.with_name(f".{live.name}.switch")
        os.symlink(Path(green.location).name, tmp)
        os.replace(tmp, live)
        return previous

    # -- writes ------------------------------------------------------------------------------
    def upsert(self, docs: Sequence[Document]) -> UpsertResult:
        return self.store.upsert(prepare_batch(docs))

    def delete(self, ids: Sequence[str]) -> int:
        return self.store.delete(list(ids))

    # -- reads from SQLite ---------------------------------------------------------------------
    def get(self, ids: Sequence[str]) -> dict[str, Product]:
        return self.store.get(list(ids))

    def fingerprints(self, ids: Sequence[str]) -> dict[str, str]:
        return self.store.fingerprints(list(ids))

    def cached_image_vectors(self, hashes: Sequence[str], model: str) -> dict[str, np.ndarray]:
        return self.store.cached_image_vectors(list(hashes), model)

    def image_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        model = self.store.active_models().get(IMAGE_SPACE)
        return {} if model is None else self.store.image_vectors(list(ids), model)

    def all_ids(self) -> list[str]:
        return self.store.all_ids()

    def get_meta(self, key: str) -> str | None:
        return self.store.get_meta(key)

    def set_meta(self, key: str, value: str) -> None:
        self.store.set_meta(key, value)

    def space_models(self) -> dict[str, str]:
        return self.store.active_models()

    # -- projections (their own table; every process's snapshot follows it) ----------------------
    def set_projection(self, projection: Projection) -> None:
        def check(active: dict[str, str]) -> None:
            check_registrable(projection, active, set(active))

        self.store.set_projection(projection, check)

    def projection(self, space: str) -> Projection | None:
        return self.store.projection(space)

    def projections(self) -> dict[str, Projection]:
        return self.store.projections()

    def drop_projection(self, space: str) -> bool:
        return self.store.drop_projection(space)

    # -- provenance (its own table, by product id) -----------------------------------------------
    def record_provenance(self, entries: Mapping[str, Provenance]) -> None:
        self.store.record_provenance(entries)

    def provenance(self, ids: Sequence[str]) -> dict[str, Provenance]:
        return self.store.provenance(list(ids))

    def delete_provenance(self, ids: Sequence[str], fields: Sequence[str] | None = None) -> int:
        return self.store.delete_provenance(list(ids), fields)

    def vectors(self, ids: Sequence[str], space: str = IMAGE_SPACE) -> dict[str, np.ndarray]:
        """From the RAM snapshot when loaded (or for many ids), else straight from SQLite."""
        ids = list(ids)
        if space not in self.snapshot.spaces and len(ids) <= SNAPSHOT_FETCH_MIN:
            with self.store.read() as cur:
                model = active_models_in(cur).get(space)
                projected = space in projection_state(cur)
            if model is None and not projected:
                return {}
            if not projected:  # a projected space is answered from RAM, where rows are projected
                return self.store.product_vectors(ids, space, str(model))
        with self.snapshot.lock:
            sp = self.snapshot.ensure(space)
            if sp is None:
                return {}
            cat = self.snapshot.catalog
            sp.reserve_rows(cat.n)
            known = [(pid, cat.row_of.get(pid)) for pid in dict.fromkeys(ids)]
            pids = [pid for pid, row in known if row is not None]
            rows = np.array([row for _, row in known if row is not None], dtype=np.int64)
            if not pids:
                return {}
            dims = sp.dims[rows]
            keep = (cat.alive[rows] & (dims > 0)).tolist()
            block = sp.gather(rows)  # one copy; the answers are views of it
            return {
                pid: vec[:dim]
                for pid, vec, dim, ok in zip(pids, block, dims.tolist(), keep, strict=True)
                if ok
            }

    def vector_matrix(self, ids: Sequence[str], space: str = IMAGE_SPACE) -> np.ndarray:
        """One gather from the RAM matrix (no per-id dict): the re-scoring hot path."""
        with self.snapshot.lock:
            sp = self.snapshot.ensure(space)
            if sp is None:
                return np.zeros((len(ids), 0), dtype=np.float32)
            cat = self.snapshot.catalog
            sp.reserve_rows(cat.n)
            rows = self._rows_of(cat, ids)
            known = rows >= 0
            safe = np.where(known, rows, 0)
            keep = known & cat.alive[safe] & (sp.dims[safe] > 0)
            out = sp.gather(safe)
            out[~keep] = 0.0
            return out

    def _rows_of(self, cat: Catalog, ids: Sequence[str]) -> np.ndarray:
        """Catalogue rows of ``ids`` (-1: unknown), remembered for the next call: a request
        reads the same window in each space, and at 1M a dict lookup costs about 1 us an id
        (cache misses), where comparing the ids again as a tuple costs a few ns each. The
        rows of the last keyword hits are remembered too (their rows were known), so the
        window read after them (its ids, then the anchors') looks up only the anchors.
        A row never changes for an id while the catalogue object lives (rows are append-only).
        """
        key = tuple(ids)
        memo = self._rows_memo
        # rows of known ids never change, but an unknown id (-1) may be added since
        if memo is not None and memo[0] is cat and (memo[1] == cat.n or memo[1] < 0):
            known, rows = memo[2], memo[3]
            if key == known:
                return rows
            m = len(known)
            if m and memo[1] < 0 and len(key) > m and key[:m] == known:
                rest = np.fromiter((cat.row_of.get(pid, -1) for pid in key[m:]), np.int64)
                rows = np.concatenate([rows, rest])
                self._remember_rows(cat, key, rows)
                return rows
        rows = np.fromiter((cat.row_of.get(pid, -1) for pid in key), np.int64, len(key))
        self._remember_rows(cat, key, rows)
        return rows

    def _remember_rows(self, cat: Catalog, ids: tuple[str, ...], rows: np.ndarray) -> None:
        """Keep the rows of ``ids``: valid for good when every id was known (-1 as ``n``)."""
        complete = bool(rows.size) and int(rows.min()) >= 0
        self._rows_memo = (cat, -1 if complete else cat.n, ids, rows)

    def stored_vectors(self, ids: Sequence[str], space: str, model: str) -> dict[str, np.ndarray]:
        """From SQLite, which keeps model vectors unprojected (RAM may hold projected rows)."""
        return self.store.product_vectors(list(ids), space, model)

    def serving_vector(self, space: str, vector: np.ndarray) -> np.ndarray:
        """A raw model vector as this space serves its rows (projected when one is stored)."""
        with self.snapshot.lock:
            sp = self.snapshot.ensure(space)
            return vector if sp is None else sp.serving(vector)

    # -- queries -----------------------------------------------------------------------------
    @staticmethod
    def _compile(filters: Filter | None) -> Compiled | None:
        return None if filters is None else compile_filter(filters)

    def keyword_search(
        self, query: str | None, filters: Filter | None = None, limit: int = 1000
    ) -> list[Candidate]:
        resolve = None
        if self.snapshot.seq >= 0:  # the catalogue is in RAM: map rowids to ids from there

            def resolve(ords: np.ndarray) -> list[str | None]:
                with self.snapshot.lock:
                    cat = self.snapshot.catalog
                    rows, ids = cat.hits_for_ords(ords)
                if all(ids):  # every hit known: the window's rows, for vector_matrix
                    self._remember_rows(cat, tuple(ids), rows)  # type: ignore[arg-type]
                return ids

        return self.keyword.search(query, self._compile(filters), int(limit), resolve)

    def count(self, filters: Filter | None = None) -> int:
        compiled = self._compile(filters)
        with self.snapshot.lock:
            self.snapshot.ensure()
            return int(np.count_nonzero(self.snapshot.catalog.mask(compiled)))

    def knn(
        self,
        vector: np.ndarray,
        k: int,
        filters: Filter | None = None,
        exclude: Sequence[str] = (),
        space: str = IMAGE_SPACE,
    ) -> list[Candidate]:
        vec = _query_vector(vector)
        compiled = self._compile(filters)
        if k <= 0:
            return []
        with self.snapshot.lock:
            sp = self.snapshot.ensure(space)
            if sp is None:
                return []
            cat = self.snapshot.catalog
            n = cat.n
            sp.reserve_rows(n)
            vec = sp.serving(vec)  # a raw vector is projected when the space serves a projection
            if len(vec) != sp.width and space not in PADDED_SPACES and sp.width:
                raise InvalidInput(
                    f"query vector has {len(vec)} dimensions; space {space!r} holds"
                    f" {sp.width}-d vectors ({sp.model})"
                )
            q = sp.query_vector(vec)
            if q is None:
                return []
            has = sp.has(n)
            live = cat.alive & has
            total = int(np.count_nonzero(live))
            cand = cat.mask(compiled) & has
            for pid in exclude:
                row = cat.row_of.get(pid)
                if row is not None:
                    cand[row] = False
            if sp.needs_ann(total) and not self.snapshot.adopt_newer(sp):
                self.snapshot.build(sp, np.flatnonzero(live), not self.policy.background)
            tokens = required_tokens(compiled, self.policy.partition_fields)
            if tokens and sp.needs_partitions(total):
                self._build_partitions(sp, has)
            ids = cat.ids
        # The search runs outside the lock, so concurrent queries of one process overlap (the
        # lock serialised them: under 20 users p95 doubled). A row changed meanwhile is read
        # old or new, as if the query had come a moment earlier or later; rows never move
        # (a full reload builds new catalog and space objects), the graph is replaced whole.
        rows, scores = sp.knn(q, cand, int(k), total, tokens)
        return [Candidate(ids[r], float(s)) for r, s in zip(rows, scores, strict=True)]

    def _build_partitions(self, sp: VectorSpace, has: np.ndarray) -> None:
        """File the rows with a vector under each value of the partition fields (under the
        snapshot lock); values too small to be worth a partition are left to exact scans."""
        cat = self.snapshot.catalog
        members: dict[str, np.ndarray] = {}
        for name in self.policy.partition_fields:
            for tok, rows in cat.field_members(name).items():
                rows = rows[has[rows]]
                if len(rows) >= self.policy.partition_min_rows:
                    members[tok] = rows
        sp.build_partitions(members, cat.n, self.snapshot.lock, not self.policy.background)

    # -- derived indexes and lifecycle -----------------------------------------------------------
    def refresh(self) -> None:
        """Apply new changes to the keyword index, and to the snapshot if this process has one."""
        self.keyword.sync()
        if self.snapshot.seq >= 0:
            self.snapshot.ensure()

    def rebuild_keyword_index(self) -> None:
        """Recreate the tantivy index from SQLite (e.g. after deleting data_dir/keyword)."""
        self.keyword.rebuild()

    def build_ann(self, space: str = IMAGE_SPACE) -> bool:
        """Build (or rebuild) the HNSW graph of a space now, waiting for it; False if empty."""
        while True:
            with self.snapshot.lock:
                sp = self.snapshot.ensure(space)
            if sp is None:
                return False
            sp.wait()  # outside the lock: a background build installs under it
            with self.snapshot.lock:
                if sp.building:
                    continue
                n = self.snapshot.catalog.n
                sp.reserve_rows(n)
                live = np.flatnonzero(self.snapshot.catalog.alive & sp.has(n))
                if len(live) == 0:
                    return False
                self.snapshot.build(sp, live, wait=True)
                return True

    def close(self) -> None:
        for sp in list(self.snapshot.spaces.values()):
            sp.wait()
        self.keyword.close()
        self.store.close()
