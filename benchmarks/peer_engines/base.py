"""What every peer of ``benchmarks/peers.py`` answers, and the numpy both sides share.

The driver builds the catalogue columns once (``columns.py``), sends each peer the same
queries, and times only the peer's calls. A peer answers two calls:

- ``keyword_rerank(q)``: BM25 window (``WINDOW`` hits) within category + price filters,
  re-scored against weighted anchors with :func:`rerank_top` (the reranker's default
  formula on this catalogue: visual + 0.3 attributes + 0.1 min-max keyword), top ``k`` ids;
- ``knn(q)``: the nearest ``k`` ids to a vector within an optional category or colour-set
  filter, some ids excluded.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CATEGORIES = [f"category{i}" for i in range(8)]
COLORS = [f"colour{i}" for i in range(20)]
BRANDS = [f"brand{i}" for i in range(50)]
WINDOW = 1000
VISUAL_W, ATTRIBUTES_W, KEYWORD_W = 1.0, 0.3, 0.1  # reranker.request.DEFAULT_WEIGHTS here
N_ATTRS = len(CATEGORIES) + len(COLORS) + len(BRANDS)


class MissingExtra(RuntimeError):
    """A peer's optional package is not installed."""

    def __init__(self, package: str) -> None:
        super().__init__(
            f"{package} is missing: install the peers extra (pip install -e '.[peers]')"
        )


@dataclass(frozen=True)
class KeywordQuery:
    text: str
    category: str
    price_lte: float
    anchors: tuple[str, ...]
    weights: tuple[float, ...]
    k: int = 10


@dataclass(frozen=True)
class KnnQuery:
    vector: np.ndarray
    k: int = 50
    category: str | None = None
    colors: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()


@dataclass
class Setup:
    """Where a peer finds the catalogue columns and may keep its index."""

    n: int
    dim: int
    columns: Path  # folder of columns.py's .npy files
    workdir: Path  # the peer's own folder (its index, cached across runs)
    options: dict[str, object] = field(default_factory=dict)


class Peer(ABC):
    """One engine under test, living in its own process."""

    name = "peer"
    detail = ""  # index kind and parameters, for the table
    cached = False  # build() reused an index built by an earlier run (its seconds then)
    slow = False  # answers in seconds: the driver sends it only the first queries

    def __init__(self, setup: Setup) -> None:
        self.setup = setup

    @abstractmethod
    def build(self) -> float | None:
        """Load or build the index; the seconds building took (now, or when it was built and
        saved: then ``cached`` is set), or None when unknown."""

    @abstractmethod
    def keyword_rerank(self, q: KeywordQuery) -> list[str]: ...

    @abstractmethod
    def knn(self, q: KnnQuery) -> list[str]: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


def pid(row: int) -> str:
    return f"p{row:07d}"


def row_of(product_id: str) -> int:
    return int(product_id[1:])


def attribute_matrix(cat: np.ndarray, col: np.ndarray, brand: np.ndarray) -> np.ndarray:
    """One-hot category/colour/brand rows, unit length (``rerank_bench.with_attributes``)."""
    m = len(cat)
    out = np.zeros((m, N_ATTRS), np.float64)
    rows = np.arange(m)
    out[rows, np.asarray(cat, np.int64)] = 1.0
    out[rows, len(CATEGORIES) + np.asarray(col, np.int64)] = 1.0
    out[rows, len(CATEGORIES) + len(COLORS) + np.asarray(brand, np.int64)] = 1.0
    return out / np.sqrt(3.0)


def unit_mean(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean of unit rows, made unit again (``lookalike.vectors.anchor_query``)."""
    w = np.asarray(weights, np.float64)
    mean = (np.asarray(rows, np.float64) * (w / w.sum())[:, None]).sum(0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean


def rerank_top(
    ids: list[str],
    bm25: np.ndarray,
    vectors: np.ndarray,
    codes: tuple[np.ndarray, np.ndarray, np.ndarray],
    anchor_vectors: np.ndarray,
    anchor_codes: tuple[np.ndarray, np.ndarray, np.ndarray],
    weights: tuple[float, ...],
    k: int,
) -> list[str]:
    """The reranker's default score of a keyword window; top ``k`` ids (ties by id)."""
    if not ids:
        return []
    w = np.asarray(weights, np.float64)
    visual = np.asarray(vectors, np.float64) @ unit_mean(anchor_vectors, w)
    attrs = attribute_matrix(*codes) @ unit_mean(attribute_matrix(*anchor_codes), w)
    b = np.asarray(bm25, np.float64)
    lo, hi = float(b.min()), float(b.max())
    kw = (b - lo) / (hi - lo) if hi > lo else np.full_like(b, 1.0 if hi > 0 else 0.0)
    score = VISUAL_W * visual + ATTRIBUTES_W * attrs + KEYWORD_W * kw
    order = np.lexsort((np.asarray(ids), -score))[:k]
    return [ids[i] for i in order]


def rerank_rows(
    cols: dict[str, np.ndarray],
    ids: list[str],
    bm25: np.ndarray,
    rows: np.ndarray,
    anchor_rows: np.ndarray,
    weights: tuple[float, ...],
    k: int,
) -> list[str]:
    """:func:`rerank_top` for a peer that holds the catalogue's columns in RAM (by row)."""
    cat, color, brand = cols["category"], cols["color"], cols["brand"]
    return rerank_top(
        ids,
        bm25,
        cols["vectors"][rows],
        (cat[rows], color[rows], brand[rows]),
        cols["vectors"][anchor_rows],
        (cat[anchor_rows], color[anchor_rows], brand[anchor_rows]),
        weights,
        k,
    )


def exact_top(vectors: np.ndarray, rows: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    """Rows (of ``rows``) of the ``k`` best inner products, best first (ties by row)."""
    if len(rows) == 0:
        return rows
    scores = vectors[rows] @ np.asarray(q, np.float32)
    k = min(k, len(rows))
    part = np.argpartition(-scores, k - 1)[:k]
    order = np.lexsort((rows[part], -scores[part]))
    result: np.ndarray = rows[part][order]
    return result
