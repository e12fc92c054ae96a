"""Ranking metrics against worked examples."""

from __future__ import annotations

import math

import pytest

from lookalike.metrics import (
    label_grade,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
)


def test_precision_recall_mrr() -> None:
    grades = [0, 2, 1, 0]
    assert precision_at_k(grades, 4) == 0.5
    assert precision_at_k(grades, 10) == 0.2  # gaps count as misses
    assert recall_at_k(grades, 4, relevant_total=4) == 0.5
    assert recall_at_k([], 4, relevant_total=0) == 1.0
    assert reciprocal_rank(grades) == 0.5
    assert reciprocal_rank([0, 0]) == 0.0


def test_ndcg_worked_example() -> None:
    # Ranking grades [0, 2, 1]; the collection holds relevant grades 2, 1, 1.
    dcg = 3 / math.log2(3) + 1 / math.log2(4)
    ideal = 3 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k([0, 2, 1], 3, [1, 2, 1]) == pytest.approx(dcg / ideal)
    assert ndcg_at_k([2, 1, 1], 3, [1, 2, 1]) == pytest.approx(1.0)
    assert ndcg_at_k([0, 0], 2, []) == 1.0


def test_label_grades() -> None:
    assert label_grade(["Shirts", "Blue"], ["Shirts", "Blue"]) == 2
    assert label_grade(["Shirts", "Blue"], ["Shirts", "Red"]) == 1
    assert label_grade(["Shirts", "Blue"], ["Jeans", "Blue"]) == 0
    assert label_grade([None, "Blue"], [None, "Blue"]) == 0
