"""Per-value partitions of a vector space, for the keyword fields people filter on.

A filter on one category keeps 1/8 of the rows, scattered over the matrix: scoring them
exactly means gathering them first, and the gather costs six times the product itself
(25k x 512-d rows: 17.9 ms gathered, 2.9 ms contiguous). A partition keeps each value's rows
contiguous as codes, so scanning a category is one contiguous pass; the best few hundred are
then re-scored exactly against the float32 matrix. The answer differs from the exact one
only where quantisation pushes a true top-k row out of that pool (recall in BENCHMARKS.md).
Two codecs: ``sq8`` (default; faiss ``QT_8bit_uniform``, a quarter of the float32 row) and
``pq4`` (faiss fast-scan ``IndexPQFastScan``, one 4-bit sub-quantiser per 8 dimensions:
1/64 of the row, SIMD table look-ups; widths not divisible by 8 fall back to ``sq8``). On
125k x 512-d rows, re-scoring 512: sq8 18.9 ms, pq4 0.8 ms, both recall@50 1.0 on the
benchmark's tight clusters; on noisier data (tests) pq4 found 0.81 of the true top-20, and
its recall@1000 was 0.65-0.95 (pool 2k-8k), so it is opt-in. (faiss 1.15's
``QT_8bit_direct_signed`` scored every row 0 at 512-d.)
Rows changed after the build are the owning space's business (it scans them exactly);
partitions themselves never change.
"""

from __future__ import annotations

from typing import Any

import faiss
import numpy as np

from lookalike.errors import EngineError

SAMPLE = 20_000  # rows sampled to train the quantiser (once, shared by every value)
DIMS_PER_CODE = 8  # dimensions per 4-bit fast-scan sub-quantiser
CHUNK = 32_768  # rows encoded at a time (bounds the float temporary)
_faiss: Any = faiss


class Partitions:
    """8-bit codes of each value's rows, contiguous per value.

    ``members[token]`` are the catalogue rows of a value in code order; ``value_of[row]`` is
    the value a row was filed under at build time (-1: none, -2: several), over the first
    ``n`` rows (those that existed then).
    """

    def __init__(
        self,
        dim: int,
        n: int,
        members: dict[str, np.ndarray],
        indexes: dict[str, Any],
        value_of: np.ndarray,
    ) -> None:
        self.dim = dim
        self.n = n
        self.members = members
        self.indexes = indexes
        self.value_of = value_of
        self.codes = {tok: i for i, tok in enumerate(members)}

    @classmethod
    def build(
        cls,
        matrix: np.ndarray,
        members: dict[str, np.ndarray],
        n: int,
        dim: int,
        codes: str = "sq8",
    ) -> Partitions:
        """Encode ``matrix[rows, :dim]`` of every value's ``rows`` (catalogue rows < ``n``)
        as ``codes``: ``pq4`` (fast-scan) or ``sq8`` (8-bit scalar)."""
        every = np.concatenate(list(members.values())) if members else np.zeros(0, np.int64)
        step = max(1, len(every) // SAMPLE)
        sample = np.ascontiguousarray(matrix[np.sort(every[::step]), :dim], dtype=np.float32)
        value_of = np.full(n, -1, dtype=np.int16)
        indexes: dict[str, Any] = {}
        try:
            empty = _empty_index(dim, codes)
            if len(sample):
                empty.train(sample)
            for code, (tok, rows) in enumerate(members.items()):
                seen = value_of[rows]
                value_of[rows] = np.where(seen == -1, code, -2)
                index = _faiss.clone_index(empty)  # trained once: the codebooks are shared
                for start in range(0, len(rows), CHUNK):
                    block = matrix[rows[start : start + CHUNK], :dim]
                    index.add(np.ascontiguousarray(block, dtype=np.float32))
                indexes[tok] = index
        except RuntimeError as exc:
            raise EngineError(f"faiss partition build failed: {exc}") from exc
        return cls(dim, n, members, indexes, value_of)

    def scan(self, token: str, q: np.ndarray, want: int) -> np.ndarray:
        """Positions in ``members[token]`` of the ``want`` best codes for unit query ``q``."""
        index = self.indexes[token]
        want = min(want, int(index.ntotal))
        if want <= 0:
            return np.empty(0, dtype=np.int64)
        query = np.ascontiguousarray(q[: self.dim], dtype=np.float32).reshape(1, -1)
        # One OpenMP thread for this calling thread only (the setting is per thread): faiss
        # otherwise splits one query's scan over both cores, and on busy cores the threads'
        # spin-waits made an engine query 15.5 ms instead of 0.8 ms (60k x 256-d, 1/8).
        before = _faiss.omp_get_max_threads()
        _faiss.omp_set_num_threads(1)
        try:
            _, labels = index.search(query, want)
        except RuntimeError as exc:
            raise EngineError(f"faiss partition scan failed: {exc}") from exc
        finally:
            _faiss.omp_set_num_threads(before)
        found = labels[0]
        return found[found >= 0]

    def covered(self, tokens: tuple[str, ...], n: int) -> np.ndarray:
        """Rows (of ``n``) filed under one of ``tokens`` at build time."""
        out = np.zeros(n, dtype=bool)
        m = min(n, self.n)
        codes = [self.codes[t] for t in tokens]
        if len(codes) == 1:
            out[:m] = self.value_of[:m] == codes[0]
        else:
            out[:m] = np.isin(self.value_of[:m], codes)
        return out

    @property
    def nbytes(self) -> int:
        return sum(int(ix.ntotal) * int(ix.code_size) for ix in self.indexes.values())


def _empty_index(dim: int, codes: str) -> Any:
    """An untrained index: 4-bit fast-scan PQ for ``pq4`` where the width allows, else
    8-bit scalar codes."""
    if codes not in ("pq4", "sq8"):
        raise EngineError(f"unknown partition codes {codes!r}: expected 'pq4' or 'sq8'")
    if codes == "pq4" and dim % DIMS_PER_CODE == 0 and dim >= 4 * DIMS_PER_CODE:
        return _faiss.IndexPQFastScan(dim, dim // DIMS_PER_CODE, 4, faiss.METRIC_INNER_PRODUCT)
    return _faiss.IndexScalarQuantizer(
        dim, faiss.ScalarQuantizer.QT_8bit_uniform, faiss.METRIC_INNER_PRODUCT
    )
