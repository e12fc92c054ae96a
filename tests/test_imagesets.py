"""Image-set similarity methods against worked examples, and the vectorised window scorer
against the per-pair reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lookalike.errors import InvalidInput
from reranker.imagesets import METHODS, SetOptions, match, pack, set_scores


def sets_with(sims: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Unit anchor and candidate image vectors whose cosine matrix is exactly ``sims``.

    Anchor images are basis vectors ``e_i``; candidate image ``j`` is column ``j`` of ``sims``
    topped up to unit length along a dimension of its own.
    """
    s = np.asarray(sims, dtype=np.float64)
    a, c = s.shape
    anchor = np.eye(a, a + c)
    cand = np.zeros((c, a + c))
    cand[:, :a] = s.T
    cand[np.arange(c), a + np.arange(c)] = np.sqrt(1.0 - (s**2).sum(axis=0))
    return anchor, cand


# 2 anchor images x 3 candidate images (unequal sizes). Greedy takes 0.6 first and is left
# with 0.2; the optimal one-to-one matching pairs 0.5 + 0.55 = 1.05 > 0.6 + 0.2.
S = [[0.6, 0.5, 0.1], [0.55, 0.1, 0.2]]


def test_the_helper_builds_the_matrix_it_promises() -> None:
    anchor, cand = sets_with(S)
    np.testing.assert_allclose(anchor @ cand.T, S, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(cand, axis=1), 1.0)


@pytest.mark.parametrize(
    ("options", "score", "pairs", "coverage"),
    [
        (SetOptions("max"), 0.6, [(0, 0, 0.6)], 2 / 5),
        (SetOptions("greedy"), 0.4, [(0, 0, 0.6), (1, 2, 0.2)], 4 / 5),
        (SetOptions("assignment"), 0.525, [(1, 0, 0.55), (0, 1, 0.5)], 4 / 5),
        # threshold: pairs under s do not count
        (SetOptions("greedy", threshold=0.3), 0.6, [(0, 0, 0.6)], 2 / 5),
        (SetOptions("assignment", threshold=0.3), 0.525, [(1, 0, 0.55), (0, 1, 0.5)], 4 / 5),
        (SetOptions("assignment", threshold=0.52), 0.55, [(1, 0, 0.55)], 2 / 5),
        (SetOptions("max", threshold=0.7), 0.0, [], 0.0),
        (SetOptions("assignment", threshold=0.7), 0.0, [], 0.0),
        # m: only the best m matches
        (SetOptions("greedy", m=1), 0.6, [(0, 0, 0.6)], 2 / 5),
        (SetOptions("assignment", m=1), 0.55, [(1, 0, 0.55)], 2 / 5),
        (SetOptions("greedy", m=5), 0.4, [(0, 0, 0.6), (1, 2, 0.2)], 4 / 5),
        (SetOptions("greedy", threshold=0.1, m=2), 0.4, [(0, 0, 0.6), (1, 2, 0.2)], 4 / 5),
        (SetOptions("greedy", threshold=0.25, m=2), 0.6, [(0, 0, 0.6)], 2 / 5),
    ],
)
def test_worked_example_2_by_3(
    options: SetOptions, score: float, pairs: list[tuple[int, int, float]], coverage: float
) -> None:
    anchor, cand = sets_with(S)
    got = match(anchor, cand, options)
    assert got.score == pytest.approx(score)
    assert [(i, j) for i, j, _ in got.pairs] == [(i, j) for i, j, _ in pairs]
    assert [s for _, _, s in got.pairs] == pytest.approx([s for _, _, s in pairs])
    assert got.coverage == pytest.approx(coverage)
    # the window scorer agrees, with the sets either way round in size
    packed = pack([cand, cand[:1], None])
    window = set_scores(anchor, packed, options)
    assert window[0] == pytest.approx(score)
    assert window[1] == pytest.approx(match(anchor, cand[:1], options).score)
    assert window[2] == 0.0


def test_symmetric_sets_need_not_be_the_same_size() -> None:
    # the same 2x3 problem seen from the 3-image side gives the same scores
    anchor, cand = sets_with(S)
    for method in ("max", "greedy", "assignment"):
        forward = match(anchor, cand, SetOptions(method)).score
        assert match(cand, anchor, SetOptions(method)).score == pytest.approx(forward)


def test_mean_is_the_cosine_of_the_mean_vectors() -> None:
    # A = {e0, e1}, C = {e0}: mean(A) = (1, 1)/√2, so cos = 1/√2; every pair method finds e0·e0
    anchor = np.eye(2)
    cand = np.array([[1.0, 0.0]])
    assert match(anchor, cand, SetOptions("mean")).score == pytest.approx(1 / math.sqrt(2))
    for method in ("max", "greedy", "assignment"):
        got = match(anchor, cand, SetOptions(method))
        assert (got.score, got.pairs, got.coverage) == (1.0, [(0, 0, 1.0)], pytest.approx(2 / 3))
    packed = pack([cand])
    assert set_scores(anchor, packed, SetOptions())[0] == pytest.approx(1 / math.sqrt(2))


def test_three_by_three_greedy_and_assignment_differ() -> None:
    # greedy: 0.9, then 0.1 and 0.1 -> 1.1/3; assignment: 0.8 + 0.8 + 0.7 -> 2.3/3
    sims = [[0.9, 0.8, 0.0], [0.8, 0.1, 0.1], [0.0, 0.1, 0.7]]
    sims_scaled = (np.array(sims) * 0.7).tolist()  # keeps every column inside the unit ball
    anchor, cand = sets_with(sims_scaled)
    greedy = match(anchor, cand, SetOptions("greedy"))
    assign = match(anchor, cand, SetOptions("assignment"))
    assert greedy.score == pytest.approx(0.7 * (0.9 + 0.1 + 0.7) / 3)
    assert [(i, j) for i, j, _ in greedy.pairs] == [(0, 0), (2, 2), (1, 1)]
    assert assign.score == pytest.approx(0.7 * (0.8 + 0.8 + 0.7) / 3)
    assert sorted((i, j) for i, j, _ in assign.pairs) == [(0, 1), (1, 0), (2, 2)]
    assert greedy.coverage == assign.coverage == 1.0
    # m = 2 keeps the two best of each matching
    assert match(anchor, cand, SetOptions("assignment", m=2)).score == pytest.approx(0.7 * 0.8)
    assert match(anchor, cand, SetOptions("greedy", m=2)).score == pytest.approx(0.7 * 0.8)


def test_empty_sets_score_zero() -> None:
    anchor = np.eye(2)
    for method in METHODS:
        assert match(anchor, np.zeros((0, 2)), SetOptions(method)).score == 0.0
        assert match(np.zeros((0, 2)), anchor, SetOptions(method)).score == 0.0


def test_vectors_of_different_widths_are_zero_padded() -> None:
    anchor = np.array([[1.0, 0.0, 0.0]])
    cand = np.array([[1.0, 0.0]])
    for method in METHODS:
        assert match(anchor, cand, SetOptions(method)).score == pytest.approx(1.0)
        packed = pack([cand])
        assert set_scores(anchor, packed, SetOptions(method))[0] == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(5))
def test_window_scores_equal_the_reference_on_random_sets(seed: int) -> None:
    rng = np.random.default_rng(seed)
    dim = 16
    anchor = rng.normal(size=(int(rng.integers(1, 7)), dim))
    window = [rng.normal(size=(int(rng.integers(0, 8)), dim)) for _ in range(40)]
    packed = pack(window)
    variants = [SetOptions(m) for m in METHODS] + [
        SetOptions(m, threshold=t, m=k)
        for m in ("max", "greedy", "assignment")
        for t in (None, 0.0, 0.2)
        for k in (None, 1, 2)
    ]
    for options in variants:
        expected = [match(anchor, c, options).score for c in window]
        np.testing.assert_allclose(set_scores(anchor, packed, options), expected, atol=1e-9)
        # engines hand over float32 rows: the window stays float32, scores agree to its precision
        single = pack([c.astype(np.float32) for c in window])
        assert single.rows.dtype == np.float32
        np.testing.assert_allclose(set_scores(anchor, single, options), expected, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "median"},
        {"method": "greedy", "threshold": 1.5},
        {"method": "greedy", "threshold": float("nan")},
        {"method": "assignment", "m": 0},
        {"method": "mean", "threshold": 0.5},
        {"method": "mean", "m": 2},
    ],
)
def test_bad_options_are_clear_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        SetOptions(**kwargs)  # type: ignore[arg-type]
