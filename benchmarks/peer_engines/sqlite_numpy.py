"""SQLite FTS5 (stdlib ``sqlite3``) for the keyword window, numpy for every vector step.

What a careful user without a vector database writes: one table of products with an
index on (category, price), an external-content FTS5 table of title + description ranked
by ``bm25()`` (title weighted 2, as this engine does), and the float32 matrix plus the
filter columns in RAM, scanned exactly with one BLAS thread.
"""

from __future__ import annotations

import sqlite3
import time

import numpy as np

from peer_engines.base import (
    CATEGORIES,
    COLORS,
    WINDOW,
    KeywordQuery,
    KnnQuery,
    Peer,
    Setup,
    exact_top,
    pid,
    rerank_rows,
    row_of,
)
from peer_engines.columns import description, load, title


class SqliteNumpy(Peer):
    name = "SQLite FTS5 + numpy"
    detail = "FTS5 bm25 (title x2), exact numpy scans"

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        self.db_path = setup.workdir / "products.db"

    def build(self) -> float | None:
        cols = load(self.setup.columns, mmap=False)  # the matrix in RAM, as np.load gives it
        self.vectors = cols["vectors"]
        self.category, self.color, self.brand = cols["category"], cols["color"], cols["brand"]
        self.cols = cols
        done = self.setup.workdir / "BUILT"
        secs = None
        if done.exists():
            secs, self.cached = float(done.read_text()), True
        else:
            t0 = time.perf_counter()
            self._build_db(cols)
            secs = time.perf_counter() - t0
            done.write_text(f"{secs:.1f}\n")
        self.db = sqlite3.connect(self.db_path, check_same_thread=False)
        self.db.execute("PRAGMA mmap_size=1073741824")
        return secs

    def _build_db(self, cols: dict[str, np.ndarray]) -> None:
        self.setup.workdir.mkdir(parents=True, exist_ok=True)
        self.db_path.unlink(missing_ok=True)
        db = sqlite3.connect(self.db_path)
        db.executescript(
            """
            PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;
            CREATE TABLE products(rowid INTEGER PRIMARY KEY, id TEXT UNIQUE, title TEXT,
                description TEXT, category TEXT, color TEXT, brand TEXT, price REAL);
            CREATE VIRTUAL TABLE fts USING fts5(title, description, content='products',
                content_rowid='rowid');
            """
        )
        words, price = cols["words"], cols["price"]
        rows = (
            (
                r,
                pid(r),
                title(words[r]),
                description(words[r]),
                CATEGORIES[self.category[r]],
                COLORS[self.color[r]],
                f"brand{self.brand[r]}",
                float(price[r]),
            )
            for r in range(self.setup.n)
        )
        db.executemany("INSERT INTO products VALUES (?,?,?,?,?,?,?,?)", rows)
        db.execute("INSERT INTO fts(fts) VALUES ('rebuild')")
        db.execute("CREATE INDEX products_cat_price ON products(category, price)")
        db.commit()
        db.execute("INSERT INTO fts(fts) VALUES ('optimize')")
        db.commit()
        db.close()

    def keyword_rerank(self, q: KeywordQuery) -> list[str]:
        match = " OR ".join(f'"{t}"' for t in q.text.split())
        found = self.db.execute(
            "SELECT p.rowid, -bm25(fts, 2.0, 1.0) FROM fts JOIN products p ON p.rowid = fts.rowid"
            " WHERE fts MATCH ? AND p.category = ? AND p.price <= ?"
            " ORDER BY bm25(fts, 2.0, 1.0) LIMIT ?",
            (match, q.category, q.price_lte, WINDOW + len(q.anchors)),
        ).fetchall()
        excluded = {row_of(a) for a in q.anchors}
        found = [f for f in found if f[0] not in excluded][:WINDOW]
        rows = np.array([f[0] for f in found], np.int64)
        bm25 = np.array([f[1] for f in found], np.float64)
        arows = np.array([row_of(a) for a in q.anchors], np.int64)
        return rerank_rows(
            self.cols, [pid(int(r)) for r in rows], bm25, rows, arows, q.weights, q.k
        )

    def knn(self, q: KnnQuery) -> list[str]:
        if q.category is not None:
            mask = self.category == CATEGORIES.index(q.category)
        elif q.colors is not None:
            mask = np.isin(self.color, [COLORS.index(c) for c in q.colors])
        else:
            mask = None
        if mask is None:
            scores = self.vectors @ q.vector
            for a in q.exclude:
                scores[row_of(a)] = -np.inf
            top = np.argpartition(-scores, q.k - 1)[: q.k]
            top = top[np.argsort(-scores[top], kind="stable")]
            return [pid(int(r)) for r in top]
        for a in q.exclude:
            mask[row_of(a)] = False
        return [pid(int(r)) for r in exact_top(self.vectors, np.flatnonzero(mask), q.vector, q.k)]

    def close(self) -> None:
        self.db.close()


PEER = SqliteNumpy
