"""The per-process row catalogue: ids, tombstones, prices and keyword postings in RAM.

Rows are append-only: a product keeps its row for the life of the snapshot (a delete only
tombstones it), so vector matrices and the ANN index can address products by row number.
Each row also records the product's SQLite rowid (``ord``, fixed for the life of the id),
which lets keyword hits be mapped to ids without fetching stored tantivy documents.
Filters become boolean masks over rows. Postings are numpy arrays built in bulk; rows
changed since then live in a small overlay that is folded back in when it grows.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from lookalike.engines.embedded.filtering import (
    AllOf,
    AnyOf,
    Compiled,
    NoneOf,
    PriceRange,
    TokenSet,
)

OVERLAY_LIMIT = 4096


class Catalog:
    """Row bookkeeping and filter evaluation shared by every vector space."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.row_of: dict[str, int] = {}
        self._alive = np.zeros(1024, dtype=bool)
        self._price = np.full(1024, np.nan)
        self._ord = np.zeros(1024, dtype=np.int64)
        self._ord_sorted = True  # rows arrive in rowid order, so ords can be binary-searched
        self._base: dict[str, np.ndarray] = {}
        self._overlay_rows: dict[int, tuple[str, ...]] = {}
        self._overlay_post: dict[str, set[int]] = {}
        self._overlay_array: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def alive(self) -> np.ndarray:
        """Live (not deleted) rows, a view of length ``n``."""
        return self._alive[: self.n]

    @property
    def price(self) -> np.ndarray:
        return self._price[: self.n]

    # -- building ----------------------------------------------------------------------------
    def load(self, rows: Iterable[tuple[str, int, int, float | None, list[str]]]) -> None:
        """Bulk load ``(id, ord, deleted, price, tokens)`` rows into an empty catalogue."""
        postings: dict[str, list[int]] = {}
        for pid, ord_, deleted, price, tokens in rows:
            row = self._new_row(pid, ord_)
            if deleted:
                continue
            self._alive[row] = True
            self._price[row] = np.nan if price is None else price
            for tok in tokens:
                postings.setdefault(tok, []).append(row)
        self._base = {t: np.asarray(r, dtype=np.int64) for t, r in postings.items()}

    def _new_row(self, pid: str, ord_: int) -> int:
        row = len(self.ids)
        if row >= len(self._alive):
            size = 2 * len(self._alive)
            self._alive = np.concatenate([self._alive, np.zeros(size - row, dtype=bool)])
            self._price = np.concatenate([self._price, np.full(size - row, np.nan)])
            self._ord = np.concatenate([self._ord, np.zeros(size - row, dtype=np.int64)])
        if row and ord_ <= self._ord[row - 1]:
            self._ord_sorted = False
        self._ord[row] = ord_
        self.ids.append(pid)
        self.row_of[pid] = row
        return row

    def set(
        self, pid: str, ord_: int, deleted: bool, price: float | None, tokens: Iterable[str]
    ) -> int:
        """Insert, update or tombstone one product; returns its row."""
        row = self.row_of.get(pid)
        if row is None:
            row = self._new_row(pid, ord_)
        self._alive[row] = not deleted
        self._price[row] = np.nan if price is None or deleted else price
        old = self._overlay_rows.get(row, ())
        for tok in old:
            self._overlay_post[tok].discard(row)
        new = () if deleted else tuple(tokens)
        self._overlay_rows[row] = new
        for tok in new:
            self._overlay_post.setdefault(tok, set()).add(row)
        self._overlay_array = None
        if len(self._overlay_rows) > max(OVERLAY_LIMIT, self.n // 50):
            self._fold_overlay()
        return row

    def _fold_overlay(self) -> None:
        """Merge the overlay into the base postings (amortised over many updates)."""
        changed = np.fromiter(self._overlay_rows, dtype=np.int64)
        changed.sort()
        tokens = set(self._base) | {t for t, rows in self._overlay_post.items() if rows}
        base: dict[str, np.ndarray] = {}
        for tok in tokens:
            rows = self._base.get(tok)
            kept = rows[~np.isin(rows, changed)] if rows is not None else np.empty(0, np.int64)
            added = self._overlay_post.get(tok)
            if added:
                kept = np.union1d(kept, np.fromiter(added, dtype=np.int64))
            if len(kept):
                base[tok] = kept
        self._base = base
        self._overlay_rows.clear()
        self._overlay_post.clear()
        self._overlay_array = None

    @property
    def rowid_ordered(self) -> bool:
        """Whether rows follow SQLite rowids, as in every freshly loaded catalogue."""
        return self._ord_sorted

    def ords(self, rows: np.ndarray) -> np.ndarray:
        """The SQLite rowids of ``rows`` (what a persisted graph stores as its labels)."""
        return self._ord[rows].copy()

    def rows_for_ords(self, ords: np.ndarray) -> np.ndarray:
        """Rows of SQLite rowids, -1 where this snapshot does not know the rowid.

        In a loaded catalogue rowids mostly follow rows at a fixed offset, so each row is
        guessed from its rowid and checked, and only misses are binary-searched (at 1M a
        search costs ~0.5 us a hit in cache misses, a checked guess a tenth of that).
        """
        known = self._ord[: self.n]
        if not self._ord_sorted:
            where = {int(o): r for r, o in enumerate(known.tolist())}
            return np.fromiter((where.get(int(o), -1) for o in ords), np.int64, len(ords))
        if self.n == 0:
            return np.full(len(ords), -1, dtype=np.int64)
        rows = np.clip(ords - known[0], 0, self.n - 1)
        missed = known[rows] != ords
        if missed.any():
            rows[missed] = np.minimum(np.searchsorted(known, ords[missed]), self.n - 1)
        return np.where(known[rows] == ords, rows, -1)

    def hits_for_ords(self, ords: np.ndarray) -> tuple[np.ndarray, list[str | None]]:
        """Rows (-1: unknown) and ids (None: unknown) of SQLite rowids, such as keyword hits;
        all unknown in a catalogue out of rowid order (a per-query map would cost more than
        fetching the stored ids)."""
        if not self._ord_sorted or len(ords) == 0:
            return np.full(len(ords), -1, dtype=np.int64), [None] * len(ords)
        rows = self.rows_for_ords(ords)
        ids = self.ids
        if rows.min() >= 0:  # the usual case: every hit is known (about 0.2 us an id less)
            return rows, [ids[r] for r in rows.tolist()]
        return rows, [ids[r] if r >= 0 else None for r in rows.tolist()]

    def field_members(self, field_name: str) -> dict[str, np.ndarray]:
        """Live rows of each value of a keyword field, by token (what partitions file)."""
        prefix = f"{field_name}="
        tokens = {t for t in self._base if t.startswith(prefix)}
        tokens |= {t for t, rows in self._overlay_post.items() if rows and t.startswith(prefix)}
        alive = self.alive
        out = {}
        for tok in sorted(tokens):
            rows = np.flatnonzero(self._tokens_mask((tok,)) & alive)
            if len(rows):
                out[tok] = rows
        return out

    # -- filters -----------------------------------------------------------------------------
    def _token_mask(self, tok: str, out: np.ndarray) -> None:
        rows = self._base.get(tok)
        if rows is not None:
            out[rows] = True

    def _tokens_mask(self, tokens: tuple[str, ...]) -> np.ndarray:
        m = np.zeros(self.n, dtype=bool)
        for tok in tokens:
            self._token_mask(tok, m)
        if self._overlay_rows:
            if self._overlay_array is None:
                self._overlay_array = np.fromiter(self._overlay_rows, dtype=np.int64)
            m[self._overlay_array] = False
            for tok in tokens:
                rows = self._overlay_post.get(tok)
                if rows:
                    m[np.fromiter(rows, dtype=np.int64)] = True
        return m

    def _range_mask(self, r: PriceRange) -> np.ndarray:
        price = self.price
        m = ~np.isnan(price)
        if r.empty:
            return np.zeros(self.n, dtype=bool)
        if r.lower is not None:
            m &= price >= r.lower if r.lower_inclusive else price > r.lower
        if r.upper is not None:
            m &= price <= r.upper if r.upper_inclusive else price < r.upper
        return m

    def _eval(self, node: Compiled) -> np.ndarray:
        if isinstance(node, TokenSet):
            return self._tokens_mask(node.tokens)
        if isinstance(node, PriceRange):
            return self._range_mask(node)
        if isinstance(node, AllOf):
            m = np.ones(self.n, dtype=bool)
            for item in node.items:
                m &= self._eval(item)
            return m
        if isinstance(node, AnyOf):
            m = np.zeros(self.n, dtype=bool)
            for item in node.items:
                m |= self._eval(item)
            return m
        if isinstance(node, NoneOf):
            return ~self._eval(node.item)
        raise TypeError(f"unknown compiled filter {node!r}")

    def mask(self, node: Compiled | None) -> np.ndarray:
        """Live rows matching the filter (all live rows for None); a fresh array."""
        if node is None:
            return self.alive.copy()
        return self._eval(node) & self.alive
