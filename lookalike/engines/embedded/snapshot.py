"""The per-process snapshot: catalogue and vector spaces, followed along the change log.

Built from SQLite on first use, then refreshed incrementally: read the changes after the
last applied sequence number, re-read those products, update their rows. Every refresh
runs inside one SQLite read transaction, so the rows and the sequence number it records
come from the same committed state.
"""

from __future__ import annotations

import json
import sqlite3
import threading

import numpy as np

from lookalike.engines.embedded.catalog import Catalog
from lookalike.engines.embedded.store import ACTIVE_MODEL, Store
from lookalike.engines.embedded.vectors import AnnPolicy, VectorSpace
from lookalike.pca import META_PREFIX as PCA_META
from lookalike.pca import TAG_PREFIX as PCA_TAG
from lookalike.pca import Pca

FETCH = 16_384
FULL_RELOAD_SHARE = 0.25  # past this many changes per row, reloading is cheaper


def _active_models(cur: sqlite3.Cursor) -> dict[str, str]:
    rows = cur.execute("SELECT key, value FROM meta WHERE key LIKE ?", (ACTIVE_MODEL + "%",))
    return {k[len(ACTIVE_MODEL) :]: v for k, v in rows}


def projection_tag(cur: sqlite3.Cursor, space: str, model: str) -> str | None:
    """The tag of the PCA stored for a space if it fits the active model (a cheap lookup)."""
    row = cur.execute("SELECT value FROM meta WHERE key = ?", (PCA_TAG + space,)).fetchone()
    return row[0] if row and str(row[0]).startswith(model + "+pca") else None


def stored_projection(cur: sqlite3.Cursor, space: str, model: str) -> Pca | None:
    """The PCA stored for a space, if it was fitted on the space's active model."""
    if projection_tag(cur, space, model) is None:
        return None
    row = cur.execute("SELECT value FROM meta WHERE key = ?", (PCA_META + space,)).fetchone()
    pca = Pca.from_json(row[0]) if row else None
    return pca if pca is not None and pca.model == model else None


def _tag(p: Pca | None) -> str | None:
    return None if p is None else p.tag


class Snapshot:
    """What one process holds in RAM to answer filters and vector queries."""

    def __init__(self, store: Store, policy: AnnPolicy) -> None:
        self.store = store
        self.policy = policy
        self.lock = threading.RLock()
        self.catalog = Catalog()
        self.spaces: dict[str, VectorSpace] = {}
        self.models: dict[str, str] = {}
        self.seq = -1  # -1: never loaded

    # -- loading -----------------------------------------------------------------------------
    def _load_catalog(self, cur: sqlite3.Cursor) -> None:
        self.seq = Store.seq_in(cur)
        self.models = _active_models(cur)
        catalog = Catalog()
        cur.execute("SELECT id, rowid, deleted, price, terms FROM products ORDER BY rowid")
        catalog.load((pid, o, d, p, json.loads(t)) for pid, o, d, p, t in cur)
        self.catalog = catalog

    def _load_space(self, cur: sqlite3.Cursor, name: str, model: str) -> VectorSpace:
        space = VectorSpace(name, model, self.policy)
        space.projection = proj = stored_projection(cur, name, model)
        row_of = self.catalog.row_of
        cursor = Store.space_vectors(cur, name, model)
        while batch := cursor.fetchmany(FETCH):
            dims = {d for _, d, _ in batch}
            known = [(row_of[p], d, b) for p, d, b in batch if p in row_of]
            if len(dims) == 1 and known:
                dim = dims.pop()
                block = np.frombuffer(b"".join(b for _, _, b in known), dtype="<f4")
                rows = np.fromiter((r for r, _, _ in known), dtype=np.int64, count=len(known))
                block = block.reshape(len(known), dim)
                space.load_block(rows, proj.reduce(block) if proj else block)
            else:
                space.load(
                    (r, space.serving(np.frombuffer(b, dtype="<f4", count=d))) for r, d, b in known
                )
        space.reserve_rows(self.catalog.n)
        return space

    def ensure(self, space: str | None = None) -> VectorSpace | None:
        """Bring the snapshot up to date; load ``space`` if asked and not loaded yet."""
        with self.lock, self.store.read() as cur:
            if self.seq < 0:
                self._load_catalog(cur)
            else:
                self._apply_changes(cur)
            if space is None or space in self.spaces:
                return self.spaces.get(space) if space else None
            model = self.models.get(space)
            if model is None:
                return None
            self.spaces[space] = self._load_space(cur, space, model)
            return self.spaces[space]

    def _apply_changes(self, cur: sqlite3.Cursor) -> None:
        for name, space in list(self.spaces.items()):
            if projection_tag(cur, name, space.model) != _tag(space.projection):
                del self.spaces[name]  # a PCA was fitted (or dropped): reload lazily
        upto = Store.seq_in(cur)
        if upto <= self.seq:
            return
        if upto - self.seq > max(FETCH, FULL_RELOAD_SHARE * self.catalog.n):
            loaded = list(self.spaces)
            self._load_catalog(cur)
            self.spaces = {}
            for name in loaded:
                if name in self.models:
                    self.spaces[name] = self._load_space(cur, name, self.models[name])
            return
        catalog = self.catalog
        changed: list[int] = []
        for pid, ord_, deleted, price, terms in Store.changed_products(
            cur, self.seq, upto, "id, rowid, deleted, price, terms"
        ):
            changed.append(catalog.set(pid, ord_, bool(deleted), price, json.loads(terms)))
        models = _active_models(cur)
        for name, space in list(self.spaces.items()):
            if models.get(name) != space.model:
                del self.spaces[name]  # a new model is active: reload lazily
                continue
            fresh = {
                catalog.row_of[p]: space.serving(np.frombuffer(b, dtype="<f4", count=d))
                for p, d, b in Store.space_vectors(cur, name, space.model, self.seq, upto)
            }
            for row in changed:
                space.set(row, fresh.get(row))
        self.models = models
        self.seq = upto
