"""The per-process snapshot: catalogue and vector spaces, followed along the change log.

Built from SQLite on first use, then refreshed incrementally: read the changes after the
last applied sequence number, re-read those products, update their rows. Every refresh
runs inside one SQLite read transaction, so the rows and the sequence number it records
come from the same committed state.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from typing import Any

import numpy as np

from lookalike.engines.embedded.ann import AnnIndex
from lookalike.engines.embedded.ann_files import GraphFiles
from lookalike.engines.embedded.catalog import Catalog
from lookalike.engines.embedded.store import (
    Store,
    active_models_in,
    projection_in,
    projection_state,
)
from lookalike.engines.embedded.vectors import AnnPolicy, VectorSpace
from lookalike.errors import ConfigError
from lookalike.projections import Projection

FETCH = 16_384
FULL_RELOAD_SHARE = 0.25  # past this many changes per row, reloading is cheaper
log = logging.getLogger(__name__)


def _served_tag(state: dict[str, tuple[str, str]], space: str, source_model: str) -> str | None:
    """The tag of the projection a space is served through, if it fits the source's model."""
    found = state.get(space)
    return found[1] if found is not None and found[0] == source_model else None


def _tag(p: Projection | None) -> str | None:
    return None if p is None else p.tag


class Snapshot:
    """What one process holds in RAM to answer filters and vector queries."""

    def __init__(self, store: Store, policy: AnnPolicy, files: GraphFiles | None = None) -> None:
        self.store = store
        self.policy = policy
        self.files = files if policy.persist else None
        self.lock = threading.RLock()
        self.catalog = Catalog()
        self.spaces: dict[str, VectorSpace] = {}
        self.models: dict[str, str] = {}
        self.seq = -1  # -1: never loaded

    # -- loading -----------------------------------------------------------------------------
    def _load_catalog(self, cur: sqlite3.Cursor) -> None:
        self.seq = Store.seq_in(cur)
        self.models = active_models_in(cur)
        catalog = Catalog()
        cur.execute("SELECT id, rowid, deleted, price, terms FROM products ORDER BY rowid")
        catalog.load((pid, o, d, p, json.loads(t)) for pid, o, d, p, t in cur)
        self.catalog = catalog

    def _source_of(self, cur: sqlite3.Cursor, name: str) -> tuple[str, str, Projection | None]:
        """``(source space, its model, projection)`` serving ``name``; KeyError when there is
        nothing to serve. A derived space whose projection was fitted on another model than
        the source's vectors now is refused (ProjectionMismatch): there is nothing to fall
        back on; an in-place one is served full until it is fitted again."""
        proj = projection_in(cur, name)
        if proj is not None and not proj.in_place:
            model = self.models[proj.source]
            proj.check_model(model)
            return proj.source, model, proj
        model = self.models[name]
        return name, model, proj if proj is not None and proj.model == model else None

    def _load_space(self, cur: sqlite3.Cursor, name: str) -> VectorSpace | None:
        try:
            source, model, proj = self._source_of(cur, name)
        except KeyError:
            return None
        space = VectorSpace(name, model, self.policy, source)
        space.lock = self.lock  # its delta graph's adds mark rows under the snapshot lock
        space.projection = proj
        found = [] if self.files is None else self.files.candidates(space.graph_key(), self.seq)
        if not (found and self._map_vectors(cur, space, found[0])):
            self._read_vectors(cur, space)
        space.reserve_rows(self.catalog.n)
        for meta in found:
            if self._adopt_graph(cur, space, meta):
                break
        return space

    def _read_vectors(self, cur: sqlite3.Cursor, space: VectorSpace) -> None:
        """Load the space's vectors from SQLite (projected, when it serves a projection)."""
        proj = space.projection
        row_of = self.catalog.row_of
        cursor = Store.space_vectors(cur, space.source, space.model)
        while batch := cursor.fetchmany(FETCH):
            dims = {d for _, d, _ in batch}
            known = [(row_of[p], d, b) for p, d, b in batch if p in row_of]
            if len(dims) == 1 and known:
                dim = dims.pop()
                block = np.frombuffer(b"".join(b for _, _, b in known), dtype="<f4")
                rows = np.fromiter((r for r, _, _ in known), dtype=np.int64, count=len(known))
                block = block.reshape(len(known), dim)
                space.load_block(rows, proj.apply(block) if proj else block)
            else:
                space.load(
                    (r, space.serving(np.frombuffer(b, dtype="<f4", count=d))) for r, d, b in known
                )

    def _changed_rows(self, cur: sqlite3.Cursor, since: int) -> np.ndarray:
        row_of = self.catalog.row_of
        changed = Store.changed_products(cur, since, self.seq, "id")
        return np.array([row_of[p] for (p,) in changed if p in row_of], dtype=np.int64)

    def _map_vectors(self, cur: sqlite3.Cursor, space: VectorSpace, meta: dict[str, Any]) -> bool:
        """Serve the matrix saved with a graph, its rows changed since re-read from SQLite."""
        assert self.files is not None
        saved = self.files.open_vectors(space.graph_key(), meta)
        if saved is None:
            return False
        n = len(saved.row_ords)
        catalog = self.catalog
        if n > catalog.n or not np.array_equal(catalog.ords(np.arange(n)), saved.row_ords):
            log.warning("not mapping the saved vectors of %r: rows differ", space.name)
            return False
        space.adopt_matrix(saved)
        seq = int(meta["seq"])
        fresh = {
            catalog.row_of[p]: space.serving(np.frombuffer(b, dtype="<f4", count=d))
            for p, d, b in Store.space_vectors(cur, space.source, space.model, seq, self.seq)
            if p in catalog.row_of
        }
        for row in self._changed_rows(cur, seq).tolist():
            space.set(row, fresh.get(row))  # copy-on-write: only these pages become private
        return True

    def _adopt_graph(self, cur: sqlite3.Cursor, space: VectorSpace, meta: dict[str, Any]) -> bool:
        """Serve through a persisted graph of this space if it fits: its rows changed after
        the graph's ``seq`` (the change log) are marked stale."""
        assert self.files is not None
        if space.width == 0:
            return False
        loaded = self.files.open_graph(space.graph_key(), meta)
        if loaded is None:
            return False
        catalog = self.catalog
        rows = catalog.rows_for_ords(loaded.ords)
        stale = self._changed_rows(cur, loaded.seq)
        if len(rows):
            # unchanged since the graph: every label must be a row with a vector here
            fresh = rows[~np.isin(rows, stale)] if len(stale) else rows
            if rows.min() < 0 or not space.has(catalog.n)[fresh].all():
                log.warning("ignoring the ANN graph of %r: its rows do not match", space.name)
                return False
        space.attach(AnnIndex(loaded.index, rows), stale, loaded.seq)
        return True

    def adopt_newer(self, space: VectorSpace) -> bool:
        """Take a graph another process saved after this space's one, instead of rebuilding:
        processes on one data directory share one rebuild too."""
        if self.files is None or space.building:
            return False
        with self.lock, self.store.read() as cur:
            for meta in self.files.candidates(space.graph_key(), self.seq):
                if int(meta["seq"]) <= space.graph_seq:
                    break
                if self._adopt_graph(cur, space, meta):
                    return True
        return False

    def build(self, space: VectorSpace, rows: np.ndarray, wait: bool) -> None:
        """Start (or run) a graph build over ``rows``, persisted as covering this ``seq``."""
        with self.lock:
            catalog = self.catalog
            row_ords = catalog.ords(np.arange(catalog.n)) if catalog.rowid_ordered else None
            space.build_ann(
                rows, self.lock, wait, self.files, self.seq, catalog.ords(rows), row_ords
            )

    def ensure(self, space: str | None = None) -> VectorSpace | None:
        """Bring the snapshot up to date; load ``space`` if asked and not loaded yet."""
        with self.lock, self.store.read() as cur:
            if self.seq < 0:
                self._load_catalog(cur)
            else:
                self._apply_changes(cur)
            if space is None or space in self.spaces:
                return self.spaces.get(space) if space else None
            loaded = self._load_space(cur, space)
            if loaded is not None:
                self.spaces[space] = loaded
            return loaded

    def _apply_changes(self, cur: sqlite3.Cursor) -> None:
        state = projection_state(cur)
        for name, space in list(self.spaces.items()):
            if _served_tag(state, name, space.model) != _tag(space.projection):
                del self.spaces[name]  # a projection was fitted (or dropped): reload lazily
        upto = Store.seq_in(cur)
        if upto <= self.seq:
            return
        if upto - self.seq > max(FETCH, FULL_RELOAD_SHARE * self.catalog.n):
            loaded = list(self.spaces)
            self._load_catalog(cur)
            self.spaces = {}
            for name in loaded:
                try:
                    reloaded = self._load_space(cur, name)
                except ConfigError:
                    continue  # a stale derived space: refused when next asked for
                if reloaded is not None:
                    self.spaces[name] = reloaded
            return
        catalog = self.catalog
        changed: list[int] = []
        for pid, ord_, deleted, price, terms in Store.changed_products(
            cur, self.seq, upto, "id, rowid, deleted, price, terms"
        ):
            changed.append(catalog.set(pid, ord_, bool(deleted), price, json.loads(terms)))
        models = active_models_in(cur)
        for name, space in list(self.spaces.items()):
            if models.get(space.source) != space.model:
                del self.spaces[name]  # a new model is active: reload lazily
                continue
            fresh = {
                catalog.row_of[p]: space.serving(np.frombuffer(b, dtype="<f4", count=d))
                for p, d, b in Store.space_vectors(cur, space.source, space.model, self.seq, upto)
            }
            for row in changed:
                space.set(row, fresh.get(row))
            space.sync_delta()  # the changed rows into the delta graph (a thread, if any)
        self.models = models
        self.seq = upto
