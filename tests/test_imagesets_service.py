"""Image sets in the re-ranker: more like this, keyword re-ranking, query sets, negatives,
explanations with matched image positions, on the embedded engine (real SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from lookalike.documents import Document, ImageEntry
from lookalike.engines.embedded import EmbeddedEngine
from lookalike.errors import InvalidInput
from reranker import Anchor, RerankRequest, run
from reranker.anchors import QUERY_ANCHOR
from reranker.imagesets import SetOptions, match

VISUAL_ONLY = {"visual": 1.0, "text": 0.0, "attributes": 0.0, "keyword": 0.0}
DIM = 8
MODEL = "img-sets@1"


def e(*idx: int) -> np.ndarray:
    """The unit vector along the sum of basis vectors ``idx``."""
    v = np.zeros(DIM, dtype=np.float32)
    v[list(idx)] = 1.0
    return v / np.linalg.norm(v)


def product(pid: str, vectors: list[np.ndarray | None], title: str = "") -> Document:
    """A product whose image ``i`` has vector ``vectors[i]`` (None: the image failed)."""
    images = [
        ImageEntry(i, f"https://img.example/{pid}/{i}.jpg", f"h-{pid}-{i}", v)
        if v is not None
        else ImageEntry(i, f"https://img.example/{pid}/{i}.jpg", None, None, "404")
        for i, v in enumerate(vectors)
    ]
    return Document(
        id=pid,
        title=title or f"item {pid}",
        images=images,
        models={"image": MODEL},
        fingerprint=f"fp-{pid}",
    )


# The anchor shows e0 (front) and e1 (back); its image 1 failed to load, so its rows are
# positions 0 and 2. "whole" has one picture that is exactly the anchor's mean; "split" has
# the two same pictures and a third (e2): by mean vectors "whole" wins, as sets "split" does.
CATALOGUE = {
    "anchor": [e(0), None, e(1)],
    "whole": [e(0, 1)],
    "split": [e(2), e(1), e(0)],
    "near": [e(0, 3), e(4)],
    "far": [e(5), e(6), e(7)],
    "bare": [None],
}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedEngine]:
    eng = EmbeddedEngine(Path(tmp_path_factory.mktemp("sets")) / "data")
    eng.upsert([product(pid, vecs, f"shirt {pid}") for pid, vecs in CATALOGUE.items()])
    eng.refresh()
    yield eng
    eng.close()


def rows(pid: str) -> np.ndarray:
    return np.stack([v for v in CATALOGUE[pid] if v is not None])


def scores(result: object) -> dict[str, float]:
    return {h.id: h.score for h in result.hits}  # type: ignore[attr-defined]


def test_engine_returns_each_products_image_rows_in_position_order(engine: EmbeddedEngine) -> None:
    got = engine.image_vectors(list(CATALOGUE))
    assert set(got) == set(CATALOGUE) - {"bare"}
    for pid, matrix in got.items():
        np.testing.assert_allclose(matrix, rows(pid), atol=1e-6)


@pytest.mark.parametrize("method", ["max", "greedy", "assignment"])
def test_more_like_this_scores_are_the_set_similarity(engine: EmbeddedEngine, method: str) -> None:
    req = RerankRequest(
        anchors=(Anchor("anchor"),), weights=VISUAL_ONLY, image_set=SetOptions(method), k=10
    )
    got = scores(run(engine, req))
    assert "anchor" not in got
    for pid, score in got.items():
        expected = 0.0 if pid == "bare" else match(rows("anchor"), rows(pid), SetOptions(method))
        assert score == pytest.approx(getattr(expected, "score", expected), abs=1e-6)


def test_sets_change_the_order_where_mean_vectors_cannot_tell(engine: EmbeddedEngine) -> None:
    base = {"anchors": (Anchor("anchor"),), "weights": VISUAL_ONLY, "k": 2}
    by_mean = [h.id for h in run(engine, RerankRequest(**base)).hits]  # type: ignore[arg-type]
    by_sets = [
        h.id
        for h in run(engine, RerankRequest(**base, image_set=SetOptions("assignment"))).hits  # type: ignore[arg-type]
    ]
    assert by_mean == ["whole", "split"]  # 1.0 against 2/√6
    assert by_sets == ["split", "whole"]  # 1.0 against 1/√2


def test_mean_is_todays_behaviour(engine: EmbeddedEngine) -> None:
    base = {"anchors": (Anchor("anchor"),), "explain": True, "k": 6}
    today = run(engine, RerankRequest(**base)).to_dict()  # type: ignore[arg-type]
    explicit = run(engine, RerankRequest(**base, image_set=SetOptions("mean"))).to_dict()  # type: ignore[arg-type]
    assert explicit == today
    assert all("image_sets" not in h["explanation"] for h in today["hits"])


def test_explanation_lists_matched_image_positions_and_coverage(engine: EmbeddedEngine) -> None:
    req = RerankRequest(
        anchors=(Anchor("anchor"),),
        weights=VISUAL_ONLY,
        image_set=SetOptions("greedy"),
        explain=True,
        k=10,
    )
    hits = {h.id: h for h in run(engine, req).hits}
    split = hits["split"].explanation["image_sets"]["anchor"]  # type: ignore[index]
    # anchor rows are positions 0 (e0) and 2 (e1); split's e1 is at 1 and e0 at 2
    assert split["method"] == "greedy"
    assert (split["anchor_images"], split["candidate_images"]) == (2, 3)
    assert sorted((p["anchor_position"], p["candidate_position"]) for p in split["pairs"]) == [
        (0, 2),
        (2, 1),
    ]
    assert all(p["score"] == pytest.approx(1.0) for p in split["pairs"])
    assert split["coverage"] == pytest.approx(4 / 5)
    assert split["score"] == pytest.approx(hits["split"].score)
    contribution = hits["split"].explanation["signals"]["visual"]["contribution"]  # type: ignore[index]
    assert contribution == pytest.approx(hits["split"].score)


def test_threshold_and_m_reach_the_scores(engine: EmbeddedEngine) -> None:
    def score_of(options: SetOptions) -> float:
        req = RerankRequest(anchors=(Anchor("anchor"),), weights=VISUAL_ONLY, image_set=options)
        return round(scores(run(engine, req))["near"], 5)  # hit scores carry 6 decimals

    # near = {(e0+e3)/√2, e4}: the one pair that counts is e0 . near0 = 1/√2
    assert score_of(SetOptions("assignment")) == pytest.approx((1 / np.sqrt(2) + 0.0) / 2, abs=1e-5)
    assert score_of(SetOptions("assignment", threshold=0.5)) == pytest.approx(
        1 / np.sqrt(2), abs=1e-5
    )
    assert score_of(SetOptions("assignment", m=1)) == pytest.approx(1 / np.sqrt(2), abs=1e-5)
    assert score_of(SetOptions("assignment", threshold=0.9)) == 0.0


def test_query_by_an_uploaded_set(engine: EmbeddedEngine) -> None:
    query = np.stack([e(1), e(2)])
    req = RerankRequest(
        query_vectors={"image": query},
        weights=VISUAL_ONLY,
        image_set=SetOptions("assignment"),
        explain=True,
        k=10,
    )
    result = run(engine, req)
    assert result.anchors == [QUERY_ANCHOR]
    got = scores(result)
    assert next(iter(got)) == "split"  # e1 and e2 both matched exactly
    for pid, score in got.items():
        if pid != "bare":
            expected = match(query, rows(pid), SetOptions("assignment")).score
            assert score == pytest.approx(expected, abs=1e-6)
    pairs = result.hits[0].explanation["image_sets"][QUERY_ANCHOR]["pairs"]  # type: ignore[index]
    assert sorted((p["anchor_position"], p["candidate_position"]) for p in pairs) == [
        (0, 1),
        (1, 0),
    ]
    # with the default (mean) the set is one vector: its unit mean
    mean = run(engine, RerankRequest(query_vectors={"image": query}, weights=VISUAL_ONLY, k=10))
    for pid, score in scores(mean).items():
        expected = match(query, rows(pid), SetOptions("mean")).score if pid != "bare" else 0.0
        assert score == pytest.approx(expected, abs=1e-6)


def test_two_anchors_average_and_negatives_use_set_similarity(engine: EmbeddedEngine) -> None:
    opts = SetOptions("max")
    req = RerankRequest(
        anchors=(Anchor("anchor", 3.0), Anchor("near")),
        negatives=(Anchor("far"),),
        weights={**VISUAL_ONLY, "negative": 0.5},
        image_set=opts,
        k=10,
    )
    got = scores(run(engine, req))
    for pid in ("whole", "split"):
        s = [match(rows(a), rows(pid), opts).score for a in ("anchor", "near", "far")]
        expected = 0.75 * s[0] + 0.25 * s[1] - 0.5 * s[2]
        assert got[pid] == pytest.approx(expected, abs=1e-6)


def test_keyword_window_re_ranked_by_sets(engine: EmbeddedEngine) -> None:
    req = RerankRequest(
        query="shirt",
        anchors=(Anchor("anchor"),),
        weights={**VISUAL_ONLY, "keyword": 0.1},
        image_set=SetOptions("assignment"),
        k=3,
    )
    result = run(engine, req)
    assert result.total == len(CATALOGUE) - 1  # "bare" too: keywords find it, kNN cannot
    assert [h.id for h in result.hits][0] == "split"
    explained = run(engine, RerankRequest(**{**req.__dict__, "k": 10, "explain": True}))
    bare = next(h for h in explained.hits if h.id == "bare")
    entry = bare.explanation["image_sets"]["anchor"]  # type: ignore[index]
    assert (entry["score"], entry["pairs"], entry["candidate_images"]) == (0.0, [], 0)


def test_a_query_set_too_large_is_refused() -> None:
    with pytest.raises(InvalidInput, match="query image set"):
        RerankRequest(query_vectors={"image": np.ones((65, DIM), np.float32)})
