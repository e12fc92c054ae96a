"""Products compared as sets of images: four set similarities, a threshold ``s`` and a top ``m``.

Every product has a matrix of unit image vectors ``[images, dim]``, in no fixed order and of
any size. ``S = A · Cᵀ`` holds the cosine of every (anchor image, candidate image) pair:

- ``mean`` — cosine of the two L2-normalised mean vectors (one picture per product; the
  re-ranker's visual signal before image sets, kept as the default path);
- ``max`` — the best pair;
- ``greedy`` — repeatedly take the best remaining pair and remove both images;
- ``assignment`` — the one-to-one matching of largest total similarity
  (``scipy.optimize.linear_sum_assignment``).

For ``max``/``greedy``/``assignment`` the matched pairs then pass two filters: pairs under the
threshold ``s`` do not count, and only the best ``m`` remaining pairs are kept. The score is the
mean of the kept pairs (0 when none is left) and ``coverage = 2·kept / (|A| + |C|)``, the
share of both products' images that take part in a kept pair.

:func:`match` scores one pair of sets and lists its pairs (explanations, tests);
:func:`set_scores` scores one anchor set against a whole window at once (re-ranking).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix

from lookalike import vectors
from lookalike.errors import InvalidInput

SetMethod = Literal["mean", "max", "greedy", "assignment"]
METHODS: tuple[str, ...] = get_args(SetMethod)
MAX_SET_IMAGES = 64  # images of one uploaded query set


@dataclass(frozen=True)
class SetOptions:
    """How two image sets are compared: ``method``, threshold ``s`` and top ``m``."""

    method: str = "mean"
    threshold: float | None = None
    m: int | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InvalidInput(f"set method must be one of {', '.join(METHODS)}", got=self.method)
        if self.threshold is not None and not (
            math.isfinite(self.threshold) and -1.0 <= self.threshold <= 1.0
        ):
            raise InvalidInput("set threshold must be a cosine in [-1, 1]", got=self.threshold)
        if self.m is not None and (isinstance(self.m, bool) or self.m < 1):
            raise InvalidInput("set m must be an integer >= 1", got=self.m)
        if self.method == "mean" and (self.threshold is not None or self.m is not None):
            raise InvalidInput(
                "set threshold and m apply to the max, greedy and assignment methods, not mean"
            )

    @property
    def per_image(self) -> bool:
        """Whether the comparison needs every image's vector (not only the product's mean)."""
        return self.method != "mean"


@dataclass
class SetMatch:
    """One set compared with another: its score, the kept pairs and the coverage."""

    score: float
    pairs: list[tuple[int, int, float]] = field(default_factory=list)  # (anchor row, cand row, s)
    coverage: float = 0.0


def unit_rows(matrix: np.ndarray, dtype: npt.DTypeLike = np.float64) -> np.ndarray:
    """Rows of unit length as ``dtype`` (stored rows, already unit, are not copied)."""
    return vectors.unit_rows(matrix, dtype, trust_unit=True)


def _unit_mean(matrix: np.ndarray) -> np.ndarray:
    return vectors.unit_mean(matrix, dtype=np.float64)


def _pad_to(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad the narrower matrix's columns so both have one width (exact for cosine)."""
    width = max(a.shape[-1], b.shape[-1])

    def pad(x: np.ndarray) -> np.ndarray:
        if x.shape[-1] == width:
            return x
        extra = [(0, 0)] * (x.ndim - 1) + [(0, width - x.shape[-1])]
        return np.pad(x, extra)

    return pad(a), pad(b)


def _matched_pairs(sims: np.ndarray, method: str) -> list[tuple[int, int, float]]:
    """The pairs a method matches, best first (before the threshold and ``m``)."""
    if method == "max":
        i, j = np.unravel_index(int(np.argmax(sims)), sims.shape)
        return [(int(i), int(j), float(sims[i, j]))]
    if method == "greedy":
        left = sims.astype(np.float64, copy=True)
        pairs = []
        for _ in range(min(sims.shape)):
            i, j = np.unravel_index(int(np.argmax(left)), left.shape)
            pairs.append((int(i), int(j), float(sims[i, j])))
            left[i, :] = -np.inf
            left[:, j] = -np.inf
        return pairs
    rows, cols = linear_sum_assignment(sims, maximize=True)
    pairs = [(int(i), int(j), float(sims[i, j])) for i, j in zip(rows, cols, strict=True)]
    return sorted(pairs, key=lambda p: (-p[2], p[0], p[1]))


def _keep(
    pairs: list[tuple[int, int, float]], threshold: float | None, m: int | None
) -> list[tuple[int, int, float]]:
    kept = [p for p in pairs if threshold is None or p[2] >= threshold]
    return kept if m is None else kept[:m]


def match(anchor: np.ndarray, candidate: np.ndarray, options: SetOptions) -> SetMatch:
    """Compare two image sets (rows are image vectors); the reference for :func:`set_scores`."""
    a, c = _pad_to(unit_rows(anchor), unit_rows(candidate))
    if len(a) == 0 or len(c) == 0:
        return SetMatch(0.0)
    if options.method == "mean":
        return SetMatch(float(_unit_mean(a) @ _unit_mean(c)), [], 1.0)
    kept = _keep(_matched_pairs(a @ c.T, options.method), options.threshold, options.m)
    if not kept:
        return SetMatch(0.0, [], 0.0)
    score = float(np.mean([p[2] for p in kept]))
    return SetMatch(score, kept, 2 * len(kept) / (len(a) + len(c)))


@dataclass
class PackedSets:
    """A window's image sets as one matrix of unit rows, each row tagged with its set and slot.

    Rows of a set are contiguous and in set order, so one matrix product scores every image
    of the window against an anchor; only the small ``[n, a, k]`` similarity block is padded.
    """

    rows: np.ndarray  # [total, dim]
    owner: np.ndarray  # [total] set index
    slot: np.ndarray  # [total] row within its set
    counts: np.ndarray  # [n] images per set

    @property
    def n(self) -> int:
        return len(self.counts)


def pack(sets: Sequence[np.ndarray | None]) -> PackedSets:
    """Sets of different sizes (None or no rows: a product without images, scoring 0)."""
    mats = [np.zeros((0, 0)) if s is None else np.asarray(s) for s in sets]
    mats = [m[None, :] if m.ndim == 1 else m for m in mats]
    counts = np.array([len(m) for m in mats], dtype=np.int64)
    full = [m for m in mats if len(m)]
    dim = max((m.shape[1] for m in full), default=0)
    dtype = np.result_type(np.float32, *full) if full else np.float32
    if all(m.shape[1] == dim for m in full):
        rows = np.concatenate(full).astype(dtype, copy=False) if full else np.zeros((0, dim))
    else:  # vectors of different widths: zero-pad (exact for cosine)
        rows = np.zeros((int(counts.sum()), dim), dtype=dtype)
        at = 0
        for m in full:
            rows[at : at + len(m), : m.shape[1]] = m
            at += len(m)
    owner = np.repeat(np.arange(len(mats)), counts)
    starts = np.cumsum(counts) - counts
    slot = np.arange(len(owner)) - np.repeat(starts, counts)
    return PackedSets(unit_rows(rows, dtype), owner, slot, counts)


def set_scores(anchor: np.ndarray, packed: PackedSets, options: SetOptions) -> np.ndarray:
    """Score one anchor set ``[a, dim]`` against every set of a packed window.

    Equals ``[match(anchor, c_i, options).score for i]`` (to float32 rounding for float32
    rows). ``max`` and ``greedy`` run on the whole window at once (greedy takes ``min(a, k)``
    vectorised steps); ``assignment`` solves one small problem per candidate.
    """
    n = packed.n
    a = unit_rows(anchor)
    if n == 0 or len(a) == 0 or len(packed.rows) == 0:
        return np.zeros(n)
    a, rows = _pad_to(a.astype(packed.rows.dtype.type), packed.rows)
    if options.method == "mean":
        ones = np.ones(len(rows), dtype=rows.dtype)
        members = csr_matrix((ones, (packed.owner, np.arange(len(rows)))), shape=(n, len(rows)))
        sums = np.asarray(members @ rows, dtype=np.float64)  # each set's sum of image vectors
        norms = np.linalg.norm(sums, axis=1)
        dots = sums @ _unit_mean(a)
        return np.divide(dots, norms, out=np.zeros(n), where=norms > 0)
    k = int(packed.counts.max())
    flat = (rows @ a.T).astype(np.float64)  # [total, a]: every window image vs every anchor image
    sims = np.full((n, len(a), k), -np.inf)
    sims[packed.owner, :, packed.slot] = flat
    if options.method == "assignment":
        out = np.zeros(n)
        for i in np.flatnonzero(packed.counts):
            block = sims[i][:, : packed.counts[i]]
            r, c = linear_sum_assignment(block, maximize=True)
            out[i] = _kept_mean(np.sort(block[r, c])[::-1], options)
        return out
    steps = 1 if options.method == "max" else min(len(a), k)
    taken = np.full((n, steps), -np.inf)
    left = sims.reshape(n, -1)
    idx = np.arange(n)
    for step in range(steps):
        best = np.argmax(left, axis=1)
        taken[:, step] = left[idx, best]
        if step + 1 < steps:
            i, j = best // k, best % k
            block = left.reshape(n, len(a), k)
            block[idx, i, :] = -np.inf
            block[idx, :, j] = -np.inf
    return _kept_means(taken, options)


def _kept_mean(values: np.ndarray, options: SetOptions) -> float:
    """Mean of descending pair scores after the threshold and ``m`` (0 when none is kept)."""
    kept = values[np.isfinite(values)]
    if options.threshold is not None:
        kept = kept[kept >= options.threshold]
    if options.m is not None:
        kept = kept[: options.m]
    return float(kept.mean()) if kept.size else 0.0


def _kept_means(taken: np.ndarray, options: SetOptions) -> np.ndarray:
    """:func:`_kept_mean` over rows of descending pair scores (``-inf`` = no pair)."""
    keep = np.isfinite(taken)
    if options.threshold is not None:
        keep &= taken >= options.threshold
    if options.m is not None:
        keep &= np.cumsum(keep, axis=1) <= options.m
    total = np.where(keep, taken, 0.0).sum(axis=1)
    count = keep.sum(axis=1)
    return np.divide(total, count, out=np.zeros(len(taken)), where=count > 0)


@dataclass
class WindowSets:
    """The image sets a window was scored with, kept to explain a hit's matched pairs.

    ``positions`` maps a set's rows to image positions (rows are the images that have a
    vector, in position order); None where that is unknown.
    """

    options: SetOptions
    anchors: dict[str, np.ndarray]  # anchor or negative name -> [a, dim]
    candidates: dict[str, np.ndarray]  # product id -> [c, dim]
    positions: dict[str, list[int] | None] = field(default_factory=dict)

    def explain(self, candidate: str) -> dict[str, dict[str, object]]:
        """Per anchor: score, coverage, image counts and the kept pairs by image position."""
        rows = self.candidates.get(candidate)
        out: dict[str, dict[str, object]] = {}
        for name, anchor in self.anchors.items():
            found = match(
                anchor, np.zeros((0, anchor.shape[1])) if rows is None else rows, self.options
            )
            a_pos = self.positions.get(name)
            c_pos = self.positions.get(candidate)
            out[name] = {
                "method": self.options.method,
                "score": found.score,
                "coverage": found.coverage,
                "anchor_images": len(anchor),
                "candidate_images": 0 if rows is None else len(rows),
                "pairs": [
                    {
                        "anchor_position": None if a_pos is None else a_pos[i],
                        "candidate_position": None if c_pos is None else c_pos[j],
                        "score": s,
                    }
                    for i, j, s in found.pairs
                ],
            }
        return out
