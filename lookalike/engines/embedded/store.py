"""SQLite, the single source of truth: products, images, vectors, projections, provenance,
meta and the change log.

Concurrency rules (see docs/embedded-engine.md): WAL mode with a busy timeout so several
processes can write while others read; every write transaction starts with ``BEGIN
IMMEDIATE`` (a deferred one that reads and then writes fails at once with "database is
locked"); the change sequence is assigned inside the write transaction, so commit order
equals sequence order and a reader following the log never skips a slower writer's rows.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.documents import ImageEntry, Product
from lookalike.engines.base import Provenance, UpsertResult
from lookalike.engines.embedded.rows import PreparedDoc, from_blob, product_from_row
from lookalike.errors import EngineError, EngineUnavailable
from lookalike.projections import Projection

# 2: projections and provenance in tables of their own (were ``pca:`` / ``inferred:`` meta rows)
SCHEMA_VERSION = 2
PAGE_SIZE = 16384
CHUNK = 900  # ids per IN (...) list, below SQLite's variable limit
ACTIVE_MODEL = "active_model:"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    terms TEXT NOT NULL,
    price REAL,
    fingerprint TEXT NOT NULL,
    revision INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS images (
    product_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    uri TEXT NOT NULL,
    hash TEXT,
    error TEXT,
    has_vector INTEGER NOT NULL,
    PRIMARY KEY (product_id, position)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS image_vectors (
    hash TEXT NOT NULL,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (hash, model)
);
CREATE TABLE IF NOT EXISTS product_vectors (
    product_id TEXT NOT NULL,
    space TEXT NOT NULL,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (product_id, space)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS projections (
    space TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    model TEXT NOT NULL,
    tag TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS provenance (
    product_id TEXT NOT NULL,
    field TEXT NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (product_id, field)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id TEXT NOT NULL,
    op TEXT NOT NULL,
    at REAL NOT NULL
);
"""

_CHANGED = "SELECT DISTINCT product_id FROM changes WHERE seq > ? AND seq <= ?"


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _prefixed(cur: sqlite3.Cursor, prefix: str) -> list[tuple[str, str]]:
    """Meta rows whose key starts with ``prefix``, as a range over the primary key (a
    ``LIKE`` cannot use that index: it scanned every row of the table)."""
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    rows = cur.execute("SELECT key, value FROM meta WHERE key >= ? AND key < ?", (prefix, upper))
    return [(k[len(prefix) :], v) for k, v in rows]


def active_models_in(cur: sqlite3.Cursor) -> dict[str, str]:
    """The model tag queries use for each stored space (the newest one written)."""
    return dict(_prefixed(cur, ACTIVE_MODEL))


def projection_state(cur: sqlite3.Cursor) -> dict[str, tuple[str, str]]:
    """``(model, tag)`` of every registered projection by served space (a small table)."""
    return {s: (m, t) for s, m, t in cur.execute("SELECT space, model, tag FROM projections")}


def projection_in(cur: sqlite3.Cursor, space: str) -> Projection | None:
    row = cur.execute("SELECT body FROM projections WHERE space = ?", (space,)).fetchone()
    return None if row is None else Projection.from_json(row[0])


def _migrate_v1(cur: sqlite3.Cursor) -> None:
    """Version 1 kept a PCA under ``pca:<space>`` (with ``pca-tag:<space>``) and provenance
    under ``inferred:<id>`` in meta: move them to their tables, in the opening transaction."""
    for space, text in _prefixed(cur, "pca:"):
        old = json.loads(text)
        weights = np.frombuffer(base64.b64decode(old["components"]), dtype="<f4")
        proj = Projection(
            kind="pca",
            source=space,
            space=space,
            model=old["model"],
            weights=weights.reshape(int(old["dim"]), -1),
            mean=np.frombuffer(base64.b64decode(old["mean"]), dtype="<f4"),
            info={"explained": float(old.get("explained", 0.0))},
        )
        _put_projection(cur, proj)
    cur.executemany(
        "INSERT INTO provenance(product_id, field, entry) VALUES (?, ?, ?)"
        " ON CONFLICT(product_id, field) DO UPDATE SET entry = excluded.entry",
        [
            (pid, fld, json.dumps(entry, ensure_ascii=False))
            for pid, text in _prefixed(cur, "inferred:")
            for fld, entry in json.loads(text).items()
        ],
    )
    for prefix in ("pca:", "pca-tag:", "inferred:"):
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        cur.execute("DELETE FROM meta WHERE key >= ? AND key < ?", (prefix, upper))


def _put_projection(cur: sqlite3.Cursor, p: Projection) -> None:
    cur.execute(
        "INSERT INTO projections(space, source, model, tag, body) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT(space) DO UPDATE SET source = excluded.source, model = excluded.model,"
        " tag = excluded.tag, body = excluded.body",
        (p.space, p.source, p.model, p.tag, p.to_json()),
    )


class Store:
    """One SQLite connection per engine, guarded by a lock for threaded API servers."""

    def __init__(self, path: Path, busy_timeout: float = 30.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._init_schema()
        except sqlite3.Error as exc:
            raise EngineError(f"cannot open SQLite store {path}: {exc}", path=str(path)) from exc

    def _init_schema(self) -> None:
        c = self._conn
        c.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        c.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # only takes effect on an empty file
        deadline = time.monotonic() + self.busy_timeout
        while True:  # two processes creating the same file can race on the journal switch
            try:
                c.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        c.execute("PRAGMA synchronous = NORMAL")
        with self.write() as cur:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    cur.execute(statement)
            row = cur.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = SCHEMA_VERSION if row is None else int(row[0])
            if version > SCHEMA_VERSION:
                raise EngineError(
                    f"{self.path} has schema version {version}; this Lookalike reads up to"
                    f" {SCHEMA_VERSION}: upgrade it",
                    path=str(self.path),
                )
            if version < 2:
                _migrate_v1(cur)
            cur.execute(
                "INSERT INTO meta(key, value) VALUES ('schema_version', ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )

    # -- transactions ----------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[sqlite3.Cursor]:
        """A write transaction taken with BEGIN IMMEDIATE (waits up to the busy timeout)."""
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                # locked past the busy timeout: another writer holds it, later may work
                busy = "locked" in str(exc) or "busy" in str(exc)
                failure = EngineUnavailable if busy else EngineError
                raise failure(f"cannot start a write transaction: {exc}") from exc
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException as exc:
                self._conn.rollback()
                if isinstance(exc, sqlite3.Error):
                    raise EngineError(f"SQLite write failed and was rolled back: {exc}") from exc
                raise

    @contextmanager
    def read(self) -> Iterator[sqlite3.Cursor]:
        """A read transaction: every statement inside sees the same committed snapshot."""
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN")
                yield cur
            except sqlite3.Error as exc:
                raise EngineError(f"SQLite read failed: {exc}") from exc
            finally:
                if self._conn.in_transaction:
                    self._conn.rollback()

    # -- writes ----------------------------------------------------------------------------
    def upsert(self, docs: Sequence[PreparedDoc]) -> UpsertResult:
        """Write a validated batch in one transaction; unchanged fingerprints are skipped."""
        if not docs:
            return UpsertResult()
        inserted = updated = unchanged = 0
        now = time.time()
        with self.write() as cur:
            known = self._states(cur, [d.id for d in docs])
            products: list[tuple[Any, ...]] = []
            images: list[tuple[Any, ...]] = []
            img_vecs: list[tuple[Any, ...]] = []
            vecs: list[tuple[Any, ...]] = []
            changes: list[tuple[Any, ...]] = []
            models: dict[str, str] = {}
            for d in docs:
                state = known.get(d.id)
                if state is not None and not state[2] and state[0] == d.fingerprint:
                    unchanged += 1
                    continue
                if state is None or state[2]:
                    inserted += 1
                else:
                    updated += 1
                revision = 1 if state is None else state[1] + 1
                products.append(
                    (d.id, d.doc_json, d.terms_json, d.price, d.fingerprint, revision, now)
                )
                images.extend((d.id, *img) for img in d.images)
                img_vecs.extend(d.image_vectors)
                vecs.extend((d.id, s, m, dim, blob) for s, m, dim, blob in d.vectors)
                changes.append((d.id, "upsert", now))
                models.update(d.models)
            if not products:
                return UpsertResult(unchanged=unchanged)
            ids = [(p[0],) for p in products]
            cur.executemany(
                "INSERT INTO products(id, doc, terms, price, fingerprint, revision, updated_at,"
                " deleted) VALUES (?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT(id) DO UPDATE SET"
                " doc=excluded.doc, terms=excluded.terms, price=excluded.price,"
                " fingerprint=excluded.fingerprint, revision=excluded.revision,"
                " updated_at=excluded.updated_at, deleted=0",
                products,
            )
            cur.executemany("DELETE FROM images WHERE product_id = ?", ids)
            cur.executemany("DELETE FROM product_vectors WHERE product_id = ?", ids)
            cur.executemany(
                "INSERT INTO images(product_id, position, uri, hash, error, has_vector)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                images,
            )
            cur.executemany(
                "INSERT OR IGNORE INTO image_vectors(hash, model, dim, vector) VALUES (?,?,?,?)",
                img_vecs,
            )
            cur.executemany(
                "INSERT INTO product_vectors(product_id, space, model, dim, vector)"
                " VALUES (?, ?, ?, ?, ?)",
                vecs,
            )
            cur.executemany("INSERT INTO changes(product_id, op, at) VALUES (?, ?, ?)", changes)
            cur.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE"
                " SET value = excluded.value WHERE value != excluded.value",
                [(ACTIVE_MODEL + space, tag) for space, tag in sorted(models.items())],
            )
        return UpsertResult(inserted=inserted, updated=updated, unchanged=unchanged)

    def _states(self, cur: sqlite3.Cursor, ids: Sequence[str]) -> dict[str, tuple[str, int, int]]:
        """fingerprint, revision and deleted flag of the stored rows among ``ids``."""
        out: dict[str, tuple[str, int, int]] = {}
        for chunk in _chunks(ids):
            cur.execute(
                "SELECT id, fingerprint, revision, deleted FROM products"
                f" WHERE id IN ({_marks(len(chunk))})",
                list(chunk),
            )
            out.update((r[0], (r[1], r[2], r[3])) for r in cur.fetchall())
        return out

    def delete(self, ids: Sequence[str]) -> int:
        """Tombstone products (the row stays so revisions keep increasing); returns how many."""
        ids = list(dict.fromkeys(ids))
        if not ids:
            return 0
        now = time.time()
        with self.write() as cur:
            live = [i for i, s in self._states(cur, ids).items() if not s[2]]
            rows = [(i,) for i in live]
            cur.executemany(
                "UPDATE products SET deleted = 1, fingerprint = '', revision = revision + 1,"
                " updated_at = ? WHERE id = ?",
                [(now, i) for i in live],
            )
            cur.executemany("DELETE FROM images WHERE product_id = ?", rows)
            cur.executemany("DELETE FROM product_vectors WHERE product_id = ?", rows)
            cur.executemany("DELETE FROM provenance WHERE product_id = ?", rows)
            cur.executemany(
                "INSERT INTO changes(product_id, op, at) VALUES (?, 'delete', ?)",
                [(i, now) for i in live],
            )
        return len(live)

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as cur:
            cur.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def set_projection(
        self, projection: Projection, check: Callable[[dict[str, str]], None]
    ) -> None:
        """Register a projection; ``check`` sees the active models in the same transaction."""
        with self.write() as cur:
            check(active_models_in(cur))
            _put_projection(cur, projection)

    def drop_projection(self, space: str) -> bool:
        with self.write() as cur:
            return cur.execute("DELETE FROM projections WHERE space = ?", (space,)).rowcount > 0

    def record_provenance(self, entries: Mapping[str, Provenance]) -> None:
        rows = [
            (pid, fld, json.dumps(entry, ensure_ascii=False))
            for pid, fields in entries.items()
            for fld, entry in fields.items()
        ]
        with self.write() as cur:
            cur.executemany(
                "INSERT INTO provenance(product_id, field, entry) VALUES (?, ?, ?)"
                " ON CONFLICT(product_id, field) DO UPDATE SET entry = excluded.entry",
                rows,
            )

    def delete_provenance(self, ids: Sequence[str], fields: Sequence[str] | None = None) -> int:
        ids = list(dict.fromkeys(ids))
        with self.write() as cur:
            had = {
                r[0]
                for chunk in _chunks(ids)
                for r in cur.execute(
                    f"SELECT DISTINCT product_id FROM provenance WHERE product_id IN"
                    f" ({_marks(len(chunk))})",
                    list(chunk),
                )
            }
            if fields is None:
                cur.executemany("DELETE FROM provenance WHERE product_id = ?", [(i,) for i in had])
            else:
                cur.executemany(
                    "DELETE FROM provenance WHERE product_id = ? AND field = ?",
                    [(i, f) for i in had for f in fields],
                )
        return len(had)

    # -- reads -----------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self.read() as cur:
            row = cur.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def active_models(self) -> dict[str, str]:
        """The model tag queries use for each space (the newest one written)."""
        with self.read() as cur:
            return active_models_in(cur)

    def projection(self, space: str) -> Projection | None:
        with self.read() as cur:
            return projection_in(cur, space)

    def projections(self) -> dict[str, Projection]:
        with self.read() as cur:
            rows = cur.execute("SELECT space, body FROM projections ORDER BY space").fetchall()
        return {space: Projection.from_json(body) for space, body in rows}

    def provenance(self, ids: Sequence[str]) -> dict[str, Provenance]:
        out: dict[str, Provenance] = {}
        for pid, fld, entry in self._select_in(
            "SELECT product_id, field, entry FROM provenance WHERE product_id IN ({marks})", ids
        ):
            out.setdefault(pid, {})[fld] = json.loads(entry)
        return out

    def max_seq(self) -> int:
        """The newest change sequence number (0 for an empty log); a cheap PK lookup."""
        with self.read() as cur:
            row = cur.execute("SELECT seq FROM changes ORDER BY seq DESC LIMIT 1").fetchone()
        return 0 if row is None else int(row[0])

    def _select_in(self, sql: str, ids: Sequence[str], params: Sequence[Any] = ()) -> list[Any]:
        """Run ``sql`` (with ``{marks}`` for the id list) over ``ids`` in chunks."""
        ids = list(dict.fromkeys(ids))
        rows: list[Any] = []
        with self.read() as cur:
            for chunk in _chunks(ids):
                sql_chunk = sql.format(marks=_marks(len(chunk)))
                rows.extend(cur.execute(sql_chunk, [*params, *chunk]))
        return rows

    def get(self, ids: Sequence[str]) -> dict[str, Product]:
        rows = self._select_in(
            "SELECT id, doc, revision, updated_at FROM products"
            " WHERE deleted = 0 AND id IN ({marks})",
            ids,
        )
        images: dict[str, list[ImageEntry]] = {}
        for pid, pos, uri, h, err in self._select_in(
            "SELECT product_id, position, uri, hash, error FROM images"
            " WHERE product_id IN ({marks}) ORDER BY product_id, position",
            [r[0] for r in rows],
        ):
            images.setdefault(pid, []).append(ImageEntry(pos, uri, h, None, err))
        return {r[0]: product_from_row(r[0], r[1], r[2], r[3], images.get(r[0], [])) for r in rows}

    def fingerprints(self, ids: Sequence[str]) -> dict[str, str]:
        rows = self._select_in(
            "SELECT id, fingerprint FROM products WHERE deleted = 0 AND id IN ({marks})", ids
        )
        return {r[0]: r[1] for r in rows}

    def all_ids(self) -> list[str]:
        with self.read() as cur:
            rows = cur.execute("SELECT id FROM products WHERE deleted = 0 ORDER BY id")
            return [r[0] for r in rows]

    def cached_image_vectors(self, hashes: Sequence[str], model: str) -> dict[str, np.ndarray]:
        rows = self._select_in(
            "SELECT hash, dim, vector FROM image_vectors WHERE model = ? AND hash IN ({marks})",
            hashes,
            (model,),
        )
        return {h: from_blob(b, d) for h, d, b in rows}

    def image_vectors(self, ids: Sequence[str], model: str) -> dict[str, np.ndarray]:
        """Per-image vectors of the given model, stacked per product in position order."""
        per: dict[str, list[np.ndarray]] = {}
        rows = self._select_in(
            "SELECT i.product_id, v.dim, v.vector FROM images i JOIN image_vectors v"
            " ON v.hash = i.hash AND v.model = ? WHERE i.has_vector = 1"
            " AND i.product_id IN ({marks}) ORDER BY i.product_id, i.position",
            ids,
            (model,),
        )
        if rows and len({dim for _, dim, _ in rows}) == 1:  # one model: one buffer, row views
            dim = rows[0][1]
            matrix = np.frombuffer(b"".join(r[2][: 4 * dim] for r in rows), dtype="<f4")
            matrix = matrix.reshape(len(rows), dim).astype(np.float32)
            out: dict[str, np.ndarray] = {}
            start = 0
            for pid, group in groupby(r[0] for r in rows):  # a product's rows are contiguous
                count = sum(1 for _ in group)
                out[pid] = matrix[start : start + count]
                start += count
            return out
        for pid, dim, blob in rows:
            per.setdefault(pid, []).append(from_blob(blob, dim))
        return {pid: np.stack(vs) for pid, vs in per.items()}

    def product_vectors(self, ids: Sequence[str], space: str, model: str) -> dict[str, np.ndarray]:
        rows = self._select_in(
            "SELECT product_id, dim, vector FROM product_vectors"
            " WHERE space = ? AND model = ? AND product_id IN ({marks})",
            ids,
            (space, model),
        )
        return {pid: from_blob(blob, dim) for pid, dim, blob in rows}

    # -- change-log reads used by the derived indexes ------------------------------------------
    @staticmethod
    def seq_in(cur: sqlite3.Cursor) -> int:
        row = cur.execute("SELECT seq FROM changes ORDER BY seq DESC LIMIT 1").fetchone()
        return 0 if row is None else int(row[0])

    @staticmethod
    def changed_products(cur: sqlite3.Cursor, since: int, upto: int, columns: str) -> list[Any]:
        """Rows (``columns`` of products) of every product changed in ``(since, upto]``.

        In rowid order, so products new to a snapshot get rows in rowid order too.
        """
        return cur.execute(
            f"SELECT {columns} FROM products WHERE id IN ({_CHANGED}) ORDER BY rowid",
            (since, upto),
        ).fetchall()

    @staticmethod
    def space_vectors(
        cur: sqlite3.Cursor, space: str, model: str, since: int | None = None, upto: int = 0
    ) -> sqlite3.Cursor:
        """(product_id, dim, blob) of a space: all of them, or those changed in the range."""
        sql = "SELECT product_id, dim, vector FROM product_vectors WHERE space = ? AND model = ?"
        if since is None:
            return cur.execute(sql, (space, model))
        return cur.execute(sql + f" AND product_id IN ({_CHANGED})", (space, model, since, upto))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
