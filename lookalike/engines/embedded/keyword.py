"""The tantivy keyword index: derived from SQLite, replayed from the change log, rebuildable.

tantivy allows one IndexWriter per index, across processes, so writers take a cross-process
``fcntl`` lock for each sync batch. The last applied change sequence is kept in a sidecar
file written after each commit; replaying a change is idempotent (delete by id, then add),
so a crash between the commit and the sidecar write only causes a harmless replay.
User text is never parsed as query syntax: it is tokenised with the index's own analyzer and
turned into term queries (see :mod:`lookalike.engines.embedded.tantivy_query`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import tantivy

from lookalike.documents import Candidate
from lookalike.engines.embedded.filelock import FileLock
from lookalike.engines.embedded.filtering import Compiled
from lookalike.engines.embedded.store import Store
from lookalike.engines.embedded.tantivy_query import (
    ANALYZER,
    analyzer,
    build_schema,
    filter_query,
    text_query,
)
from lookalike.errors import EngineError

SCHEMA_VERSION = 2  # 2: documents clustered by the partition fields on rebuild
WRITER_HEAP = 64_000_000
REBUILD_SHARE = 0.25  # replaying more changes than this share of docs: rebuild instead
REBUILD_MIN = 10_000  # ... and more than this many
ROW_COLUMNS = "id, rowid, deleted, price, terms, doc"
LIVE_ROWS = f"SELECT {ROW_COLUMNS} FROM products WHERE deleted = 0"
# A field's filter token of a row (``field=value``, as filters name it), to cluster by.
_TOKEN_OF = "(SELECT min(value) FROM json_each(terms) WHERE value >= ? AND value < ?)"
Resolver = Callable[[np.ndarray], list[str | None]]

log = logging.getLogger("lookalike.engine.keyword")


def _tantivy_failure(exc: BaseException) -> bool:
    """tantivy reports failures as ValueError/OSError/RuntimeError or a Rust panic."""
    return isinstance(exc, ValueError | OSError | RuntimeError) or (
        type(exc).__name__ == "PanicException"
    )


@contextmanager
def _translate(what: str) -> Iterator[None]:
    """Turn tantivy's ValueError/OSError and Rust panics into EngineError with context."""
    try:
        yield
    except EngineError:
        raise
    except BaseException as exc:
        if _tantivy_failure(exc):
            raise EngineError(f"keyword index {what} failed: {exc}") from exc
        raise


def _tantivy_doc(row: tuple[Any, ...]) -> tantivy.Document:
    pid, rowid, _deleted, price, terms, doc_text = row
    d = json.loads(doc_text)
    doc = tantivy.Document()
    doc.add_text("id", pid)
    doc.add_integer("ord", int(rowid))
    doc.add_text("title", d.get("title") or "")
    doc.add_text("description", d.get("description") or "")
    for name in ("brand", "category", "color"):
        if d.get(name):
            doc.add_text(f"{name}_text", d[name])
    values = [v for vs in (d.get("attributes") or {}).values() for v in vs]
    if values:
        doc.add_text("attributes_text", " ".join(values))
    for tok in json.loads(terms):
        doc.add_text("kw", tok)
    if price is not None:
        doc.add_float("price", float(price))
    return doc


class KeywordIndex:
    """BM25 search with filters over ``data_dir/keyword``, kept in step with the store."""

    def __init__(
        self,
        data_dir: Path,
        store: Store,
        lock_timeout: float,
        cluster_fields: tuple[str, ...] = (),
    ) -> None:
        self.cluster_fields = cluster_fields
        self.dir = data_dir / "keyword"
        self.index_dir = self.dir / "index"
        self.state_path = self.dir / "state.json"
        self.store = store
        self.schema = build_schema()
        self.analyzer = analyzer()
        self._file_lock = FileLock(data_dir / "keyword.lock", lock_timeout)
        self._lock = threading.RLock()
        self._index: tantivy.Index | None = None
        self._applied = -1
        self._generation: str | None = None  # changes when the index directory is recreated

    def _live_rows(self, cur: sqlite3.Cursor) -> sqlite3.Cursor:
        """Every live row, clustered by the values of ``cluster_fields``, then rowid.

        tantivy numbers documents in the order they are added, and an intersection seeks
        the query's postings to each document of the filter's value: with a value's
        documents contiguous, those seeks skip whole blocks of postings. At 1M, a keyword
        search within a 1/8 category and a price range took 2.3-2.4 ms against 5.6-5.9 ms in
        rowid order, with the same hits (``BENCHMARKS.md``). Rows replayed later are appended.
        """
        order, args = [], []
        for name in self.cluster_fields:
            order.append(_TOKEN_OF)
            args += [f"{name}=", f"{name}>"]  # '>' follows '=': every token of the field
        return cur.execute(f"{LIVE_ROWS} ORDER BY {', '.join([*order, 'rowid'])}", args)

    # -- sidecar state ---------------------------------------------------------------------------
    def _read_state(self) -> int | None:
        """The applied sequence on disk, or None if missing or from another schema."""
        state = self._state()
        return None if state is None else int(state["seq"])

    def _state(self) -> dict[str, Any] | None:
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None
        if state.get("schema") != SCHEMA_VERSION or not isinstance(state.get("seq"), int):
            return None
        return dict(state)

    def _write_state(self, seq: int, generation: str | None = None, appended: int = 0) -> None:
        """Atomically record the applied sequence (and the index generation, on rebuilds),
        and how many changes were appended by replays since the last (clustered) rebuild."""
        if generation is None:
            generation = (self._state() or {}).get("generation") or uuid.uuid4().hex
        state = {
            "schema": SCHEMA_VERSION,
            "seq": seq,
            "generation": generation,
            "appended": appended,
        }
        tmp = self.state_path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_path)
        self._generation = generation

    # -- opening and rebuilding --------------------------------------------------------------------
    def _open_existing(self) -> tantivy.Index | None:
        state = self._state()
        if state is None or not tantivy.Index.exists(str(self.index_dir)):
            return None
        try:
            index = tantivy.Index.open(str(self.index_dir))
        except ValueError:
            return None
        index.register_tokenizer(ANALYZER, self.analyzer)
        self._generation = state.get("generation")
        self._applied = -1
        return index

    def _ensure_open(self) -> tantivy.Index:
        if self._index is not None:
            return self._index
        index = self._open_existing()
        if index is None:
            with self._file_lock:
                index = self._open_existing()
                if index is None:
                    index = self._rebuild_locked()
        self._index = index
        return index

    def _rebuild_locked(self) -> tantivy.Index:
        """Recreate the index from every live product (caller holds the file lock)."""
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.index_dir.mkdir(parents=True)
        index = tantivy.Index(self.schema, path=str(self.index_dir), reuse=False)
        index.register_tokenizer(ANALYZER, self.analyzer)
        with self.store.read() as cur:
            seq = Store.seq_in(cur)
            writer = index.writer(WRITER_HEAP, 1)  # one thread: documents in the rows' order
            for row in self._live_rows(cur):
                writer.add_document(_tantivy_doc(row))
            writer.commit()
            writer.wait_merging_threads()
        self._write_state(seq, generation=uuid.uuid4().hex)
        index.reload()
        self._applied = seq
        return index

    def rebuild(self) -> None:
        """Drop the index and rebuild it from SQLite (safe while other processes search)."""
        with self._lock, _translate("rebuild"), self._file_lock:
            self._index = self._rebuild_locked()

    # -- keeping in step -----------------------------------------------------------------------
    def sync(self) -> None:
        """Apply every change committed since the last applied sequence number."""
        with self._lock, _translate("sync"):
            target = self.store.max_seq()
            if self._index is not None and target <= self._applied:
                return
            state = self._state()
            if state is not None and state.get("generation") != self._generation:
                self._index = None  # another process recreated the directory: reopen it
            index = self._ensure_open()
            on_disk = self._read_state()
            if on_disk is None or on_disk < target:
                with self._file_lock:
                    on_disk = self._read_state()
                    if on_disk is None:
                        self._index = self._rebuild_locked()
                        return
                    if on_disk < target:
                        try:
                            on_disk = self._replay_locked(index, on_disk)
                        except BaseException as exc:
                            if not _tantivy_failure(exc):
                                raise
                            # A writer killed mid-commit can leave files tantivy refuses to
                            # overwrite (e.g. a stale .del): the index is derived, so rebuild.
                            log.warning("keyword index replay failed (%s); rebuilding", exc)
                            self._index = self._rebuild_locked()
                            return
            index.reload()
            self._applied = on_disk

    def _replay_locked(self, index: tantivy.Index, applied: int) -> int:
        with self.store.read() as cur:
            upto = Store.seq_in(cur)
            docs = index.searcher().num_docs
            appended = int((self._state() or {}).get("appended", 0)) + upto - applied
            # A big backlog, or (clustered) a quarter appended unclustered since the rebuild.
            backlog = appended if self.cluster_fields else upto - applied
            if backlog > max(REBUILD_MIN, REBUILD_SHARE * docs):
                self._index = self._rebuild_locked_in(cur, index)
                return self._applied
            rows = Store.changed_products(cur, applied, upto, ROW_COLUMNS)
        writer = index.writer(WRITER_HEAP, 1)
        try:
            for row in rows:
                writer.delete_documents_by_term("id", row[0])
                if not row[2]:
                    writer.add_document(_tantivy_doc(row))
            writer.commit()
        except BaseException:
            writer.rollback()
            raise
        writer.wait_merging_threads()
        self._write_state(upto, appended=appended)
        return upto

    def _rebuild_locked_in(self, cur: sqlite3.Cursor, index: tantivy.Index) -> tantivy.Index:
        """Refill the open index inside the caller's read transaction (one atomic commit)."""
        seq = Store.seq_in(cur)
        writer = index.writer(WRITER_HEAP, 1)
        writer.delete_all_documents()
        for row in self._live_rows(cur):
            writer.add_document(_tantivy_doc(row))
        writer.commit()
        writer.wait_merging_threads()
        self._write_state(seq)
        self._applied = seq
        return index

    # -- search --------------------------------------------------------------------------------
    def search(
        self, query: str | None, flt: Compiled | None, limit: int, resolve: Resolver | None = None
    ) -> list[Candidate]:
        """BM25 top-``limit`` within the filter; no query: filtered rows in rowid order.

        ``resolve`` maps SQLite rowids to ids from RAM (fetching ~1000 stored documents
        would cost more than the search itself); hits it does not know are fetched.
        """
        self.sync()
        if limit <= 0:
            return []
        with self._lock, _translate("search"):
            index = self._ensure_open()
            searcher = index.searcher()
            limit = min(limit, searcher.num_docs)
            if limit <= 0:
                return []
            fq = None if flt is None else filter_query(self.schema, flt)
            if query is None or not query.strip():
                q = fq if fq is not None else tantivy.Query.all_query()
                result = searcher.search(
                    q, limit, count=False, order_by_field="ord", order=tantivy.Order.Asc
                )
                hits = [(0.0, a) for _, a in result.hits]
                ords = [int(o) for o, _ in result.hits]
            else:
                tq = text_query(self.schema, self.analyzer, query)
                if tq is None:
                    return []
                if fq is not None:
                    tq = tantivy.Query.boolean_query(
                        [
                            (tantivy.Occur.Must, tq),
                            (tantivy.Occur.Must, tantivy.Query.const_score_query(fq, 0.0)),
                        ]
                    )
                hits = searcher.search(tq, limit, count=False).hits
                ords = [] if resolve is None else self._ords(searcher, [a for _, a in hits])
            ids = resolve(np.asarray(ords, dtype=np.int64)) if resolve and ords else []
            if len(ids) != len(hits):
                ids = [None] * len(hits)
            scores = [float(sc) for sc, _ in hits]
            if all(ids):  # every id known from RAM (the usual case): no per-hit branch
                return list(map(Candidate, ids, scores))  # type: ignore[arg-type]
            return [
                Candidate(self._id(searcher, a) if pid is None else pid, sc)
                for (_, a), pid, sc in zip(hits, ids, scores, strict=True)
            ]

    @staticmethod
    def _ords(searcher: tantivy.Searcher, addresses: list[tantivy.DocAddress]) -> list[int]:
        return [int(v) for v in searcher.fast_field_values("ord", addresses)]  # type: ignore[arg-type]

    @staticmethod
    def _id(searcher: tantivy.Searcher, address: tantivy.DocAddress) -> str:
        return str(searcher.doc(address).get_first("id"))

    def close(self) -> None:
        with self._lock:
            self._index = None
