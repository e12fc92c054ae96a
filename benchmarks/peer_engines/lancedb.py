"""LanceDB (embedded, on local disk): its vector index with pre-filtering on scalar indexes,
and its native full-text index (BM25) for the keyword window, re-scored with numpy.

The table holds id, title, description, category, colour, brand, price and the 512-d
vector; ``id`` has a BTREE index, category and colour BITMAP indexes, price a BTREE. The
vector index is IVF-PQ by default (``sqrt(n)`` partitions, 64 sub-vectors of 8 dims,
``nprobes`` 20 and ``refine_factor`` 10: the re-ranked PQ setting LanceDB's docs advise);
``lancedb_hnsw.py`` runs its IVF_HNSW_SQ variant. Title matches count twice
(``MultiMatchQuery`` boosts), as in this engine.
"""

from __future__ import annotations

import math
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from peer_engines.base import (
    BRANDS,
    CATEGORIES,
    COLORS,
    WINDOW,
    KeywordQuery,
    KnnQuery,
    MissingExtra,
    Peer,
    Setup,
    pid,
    rerank_top,
)
from peer_engines.columns import description, load, title

BATCH = 20_000


class LanceDB(Peer):
    name = "LanceDB IVF-PQ"
    index_type = "IVF_PQ"

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        os.environ.setdefault("LANCE_LOG", "error")  # its scanner warns once per query otherwise
        try:
            import lancedb
            import pyarrow as pa
        except ImportError as exc:
            raise MissingExtra("lancedb") from exc
        self.lancedb, self.pa = lancedb, pa
        self.nprobes, self.refine = 20, 10

    def index_options(self) -> dict[str, Any]:
        return {
            "num_partitions": int(math.sqrt(self.setup.n)),
            "num_sub_vectors": self.setup.dim // 8,
        }

    def _batches(self, cols: dict[str, np.ndarray]) -> Iterator[Any]:
        pa, n, dim = self.pa, self.setup.n, self.setup.dim
        for lo in range(0, n, BATCH):
            hi = min(lo + BATCH, n)
            rows = range(lo, hi)
            flat = pa.array(np.ascontiguousarray(cols["vectors"][lo:hi]).reshape(-1), pa.float32())
            yield pa.record_batch(
                {
                    "id": pa.array([pid(r) for r in rows]),
                    "title": pa.array([title(cols["words"][r]) for r in rows]),
                    "description": pa.array([description(cols["words"][r]) for r in rows]),
                    "category": pa.array([CATEGORIES[c] for c in cols["category"][lo:hi]]),
                    "color": pa.array([COLORS[c] for c in cols["color"][lo:hi]]),
                    "brand": pa.array([BRANDS[c] for c in cols["brand"][lo:hi]]),
                    "price": pa.array(cols["price"][lo:hi], pa.float64()),
                    "vector": pa.FixedSizeListArray.from_arrays(flat, dim),
                }
            )

    def build(self) -> float | None:
        path = self.setup.workdir / f"db-{self.index_type.lower()}"
        done = path / "BUILT"
        secs = None
        if done.exists():
            secs, self.cached = float(done.read_text()), True
        else:
            shutil.rmtree(path, ignore_errors=True)
            cols = load(self.setup.columns)
            t0 = time.perf_counter()
            db = self.lancedb.connect(path)
            batches = list(self._batches(cols))
            table = db.create_table("products", self.pa.Table.from_batches(batches))
            del batches
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                table.create_index(
                    metric="cosine", index_type=self.index_type, **self.index_options()
                )
            table.create_scalar_index("id", index_type="BTREE")
            table.create_scalar_index("category", index_type="BITMAP")
            table.create_scalar_index("color", index_type="BITMAP")
            table.create_scalar_index("price", index_type="BTREE")
            for text in ("title", "description"):  # native FTS: one index per field
                table.create_fts_index(text, remove_stop_words=False)
            secs = time.perf_counter() - t0
            done.write_text(f"{secs:.1f}\n")
        self.table = self.lancedb.connect(path).open_table("products")
        opts = ", ".join(f"{k} {v}" for k, v in self.index_options().items())
        self.detail = (
            f"{self.index_type} ({opts}), nprobes {self.nprobes}, refine x{self.refine};"
            " native FTS; lancedb " + self.lancedb.__version__
        )
        return secs

    def _vector_query(self, vector: np.ndarray) -> Any:
        return (
            self.table.search(vector, vector_column_name="vector")
            .distance_type("cosine")
            .nprobes(self.nprobes)
            .refine_factor(self.refine)
        )

    @staticmethod
    def _in(values: tuple[str, ...]) -> str:
        return "(" + ", ".join(f"'{v}'" for v in values) + ")"

    def keyword_rerank(self, q: KeywordQuery) -> list[str]:
        from lancedb.query import MultiMatchQuery

        cols = ["id", "category", "color", "brand", "vector"]
        where = (
            f"category = '{q.category}' AND price <= {q.price_lte!r}"
            f" AND id NOT IN {self._in(q.anchors)}"
        )
        found = (
            self.table.search(
                MultiMatchQuery(q.text, ["title", "description"], boosts=[2.0, 1.0]),
                query_type="fts",
            )
            .where(where, prefilter=True)
            .select(cols)
            .limit(WINDOW)
            .to_arrow()
        )
        anchors = self.table.search().where(f"id IN {self._in(q.anchors)}").select(cols).to_arrow()
        order = {a: i for i, a in enumerate(anchors["id"].to_pylist())}
        pick = [order[a] for a in q.anchors]
        codes = self._codes(anchors)
        return rerank_top(
            found["id"].to_pylist(),
            found["_score"].to_numpy(),
            self._matrix(found),
            self._codes(found),
            self._matrix(anchors)[pick],
            (codes[0][pick], codes[1][pick], codes[2][pick]),
            q.weights,
            q.k,
        )

    def _matrix(self, t: Any) -> np.ndarray:
        col = t["vector"].combine_chunks()
        return col.values.to_numpy().reshape(len(t), self.setup.dim)

    @staticmethod
    def _codes(t: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        def code(name: str, values: list[str]) -> np.ndarray:
            index = {v: i for i, v in enumerate(values)}
            return np.array([index[v] for v in t[name].to_pylist()], np.int64)

        return code("category", CATEGORIES), code("color", COLORS), code("brand", BRANDS)

    def knn(self, q: KnnQuery) -> list[str]:
        clauses = []
        if q.category is not None:
            clauses.append(f"category = '{q.category}'")
        if q.colors is not None:
            clauses.append(f"color IN {self._in(q.colors)}")
        if q.exclude:
            clauses.append(f"id NOT IN {self._in(q.exclude)}")
        query = self._vector_query(q.vector)
        if clauses:
            query = query.where(" AND ".join(clauses), prefilter=True)
        found = query.select(["id"]).limit(q.k).to_arrow()
        ids: list[str] = found["id"].to_pylist()
        return ids


PEER = LanceDB
