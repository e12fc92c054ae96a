"""Ranking metrics over graded relevance (0 = not relevant, higher = more relevant).

Plain functions over one ranked list, so any ranking (engine, offline matrix, golden set)
is scored by the same code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def precision_at_k(grades: Sequence[int], k: int) -> float:
    """Share of the top k that is relevant (grade > 0); a short list counts its gaps as misses."""
    return sum(1 for g in grades[:k] if g > 0) / k


def recall_at_k(grades: Sequence[int], k: int, relevant_total: int) -> float:
    """Share of all relevant items found in the top k (1.0 when nothing is relevant)."""
    if relevant_total <= 0:
        return 1.0
    return sum(1 for g in grades[:k] if g > 0) / relevant_total


def dcg(grades: Sequence[int]) -> float:
    """Discounted cumulative gain with exponential gain ``2^g - 1``."""
    return sum((2**g - 1) / math.log2(rank + 2) for rank, g in enumerate(grades))


def ndcg_at_k(grades: Sequence[int], k: int, ideal_grades: Sequence[int]) -> float:
    """DCG of the top k over the DCG of the best possible top k (``ideal_grades``: every
    relevant item's grade in the collection, any order). 1.0 when nothing is relevant."""
    ideal = dcg(sorted(ideal_grades, reverse=True)[:k])
    return dcg(grades[:k]) / ideal if ideal > 0 else 1.0


def reciprocal_rank(grades: Sequence[int]) -> float:
    """1 / rank of the first relevant item; 0 when none is."""
    for rank, g in enumerate(grades, start=1):
        if g > 0:
            return 1.0 / rank
    return 0.0


def label_grade(anchor: Sequence[str | None], other: Sequence[str | None]) -> int:
    """Graded relevance from labels: the first label must match (grade 1), and each further
    matching label adds one (e.g. labels category, color: same category and colour = 2)."""
    if not anchor or anchor[0] is None or anchor[0] != other[0]:
        return 0
    return 1 + sum(
        1 for a, b in zip(anchor[1:], other[1:], strict=True) if a is not None and a == b
    )
