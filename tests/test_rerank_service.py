"""The re-ranking service's behaviour: paging, negatives, the kNN path, request validation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from lookalike.documents import Document, ImageEntry
from lookalike.engines.embedded import EmbeddedEngine
from lookalike.errors import InvalidInput, NotFound
from lookalike.filters import Term
from reranker import Anchor, RerankRequest, parse_weighted_ids, parse_weights, run
from reranker.scoring import aggregate_terms, normalize_keyword, rank_order
from tests.test_rerank_reference import build_catalogue

VISUAL_ONLY = {"visual": 1.0, "text": 0.0, "attributes": 0.0, "keyword": 0.0}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedEngine]:
    docs, _ = build_catalogue(seed=11)
    # one product without any image vector (its image failed to load)
    docs.append(
        Document(
            id="noimg",
            title="red shirt",
            images=[ImageEntry(0, "https://img/noimg.jpg", error="404")],
            fingerprint="fp-noimg",
        )
    )
    eng = EmbeddedEngine(Path(tmp_path_factory.mktemp("svc")) / "data")
    eng.upsert(docs)
    eng.refresh()
    yield eng
    eng.close()


def test_pages_continue_without_duplicates_or_gaps(engine: EmbeddedEngine) -> None:
    base = {"query": "red shirt dress", "anchors": (Anchor("p01"), Anchor("p02", 2.0))}
    whole = run(engine, RerankRequest(**base, k=40))  # type: ignore[arg-type]
    paged: list[str] = []
    for offset in range(0, 40, 7):
        page = run(engine, RerankRequest(**base, k=7, offset=offset))  # type: ignore[arg-type]
        assert page.total == whole.total
        paged += [h.id for h in page.hits]
    assert paged == [h.id for h in whole.hits]
    assert len(set(paged)) == len(paged)


def test_browse_pages_are_stable_too(engine: EmbeddedEngine) -> None:
    base = {"anchors": (Anchor("p03"),), "filters": Term("category", "tops")}
    whole = [h.id for h in run(engine, RerankRequest(**base, k=30)).hits]  # type: ignore[arg-type]
    paged = [
        h.id
        for offset in (0, 4, 8, 12, 16)
        for h in run(engine, RerankRequest(**base, k=4, offset=offset)).hits  # type: ignore[arg-type]
    ]
    assert paged == whole[:20]


def test_more_like_this_equals_exact_knn_on_visual_only(engine: EmbeddedEngine) -> None:
    query = engine.vectors(["p05"])["p05"]
    expected = [c.id for c in engine.knn(query, 10, exclude=["p05"])]
    got = run(engine, RerankRequest(anchors=(Anchor("p05"),), weights=VISUAL_ONLY, k=10))
    assert [h.id for h in got.hits] == expected


def test_a_negative_pulls_its_lookalikes_down(engine: EmbeddedEngine) -> None:
    plain = run(engine, RerankRequest(anchors=(Anchor("p07"),), weights=VISUAL_ONLY, k=47))
    ranks = {h.id: r for r, h in enumerate(plain.hits)}
    negative = plain.hits[0].id  # the closest lookalike, now marked "not like this"
    second = plain.hits[1].id
    pushed = run(
        engine,
        RerankRequest(
            anchors=(Anchor("p07"),),
            negatives=(Anchor(second),),
            weights={**VISUAL_ONLY, "negative": 2.0},
            k=47,
        ),
    )
    new_ranks = {h.id: r for r, h in enumerate(pushed.hits)}
    assert second not in new_ranks  # negatives never appear either
    assert pushed.total == plain.total - 1
    vecs = engine.vectors(list(new_ranks) + [second])
    near = sorted(new_ranks, key=lambda i: -float(vecs[i] @ vecs[second]))[:5]
    assert sum(new_ranks[i] for i in near) > sum(ranks[i] for i in near)
    assert negative in new_ranks


def test_min_aggregation_scores_by_the_weakest_anchor() -> None:
    sims = np.array([[0.9, 0.1], [0.5, 0.5]])
    terms = aggregate_terms(sims, np.array([1.0, 1.0]), "min")
    assert terms.sum(axis=1).tolist() == pytest.approx([0.1, 0.5])  # the balanced one wins
    terms = aggregate_terms(sims, np.array([1.0, 1.0]), "max")
    assert terms.sum(axis=1).tolist() == pytest.approx([0.9, 0.5])
    # a lighter anchor's shortfall counts less under min
    light = aggregate_terms(sims, np.array([1.0, 0.25]), "min").sum(axis=1)
    assert light[0] == pytest.approx(1 - 0.25 * 0.9)


def test_keyword_normalisations() -> None:
    assert normalize_keyword(np.array([2.0, 4.0, 3.0]), "minmax").tolist() == [0.0, 1.0, 0.5]
    rank = normalize_keyword(np.array([4.0, 2.0, 4.0]), "rank").tolist()
    assert rank == pytest.approx([1.0, 61 / 63, 1.0])
    assert normalize_keyword(np.zeros(3), "rank").tolist() == [0.0, 0.0, 0.0]
    assert rank_order(np.array([1.0, 2.0, 1.0]), ["b", "c", "a"]).tolist() == [1, 2, 0]


def test_parse_weighted_ids_and_weights() -> None:
    assert parse_weighted_ids(["a:2,b", "c", "a"]) == (
        Anchor("a", 2.0),
        Anchor("b", 1.0),
        Anchor("c", 1.0),
    )
    assert parse_weighted_ids(["sku:x-1"]) == (Anchor("sku:x-1", 1.0),)  # a colon in an id
    for bad in ("a:0", "a:-1", "a:nan", "a:inf"):
        with pytest.raises(InvalidInput):
            parse_weighted_ids([bad])
    assert parse_weights(["visual=0.7", "keyword=0"]) == {"visual": 0.7, "keyword": 0.0}
    for bad in ("visual", "colour=1", "text=much"):
        with pytest.raises(InvalidInput):
            parse_weights([bad])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"aggregation": "median"},
        {"keyword_norm": "zscore"},
        {
            "anchors": tuple(Anchor(f"p{i:02d}") for i in range(15)),
            "negatives": tuple(Anchor(f"p{i:02d}") for i in range(15, 21)),
        },
        {"anchors": (Anchor("p01"),), "negatives": (Anchor("p01"),)},
        {"weights": {"visual": -1.0}},
        {"weights": {"colour": 1.0}},
        {"k": 0},
        {"k": 201, "max_k": 200},
        {"window": 0},
    ],
)
def test_invalid_requests(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        RerankRequest(**kwargs)  # type: ignore[arg-type]


def test_unknown_and_imageless_anchors(engine: EmbeddedEngine) -> None:
    with pytest.raises(NotFound):
        run(engine, RerankRequest(anchors=(Anchor("p01"),), negatives=(Anchor("nope"),)))
    with pytest.raises(InvalidInput, match="at least one anchor"):
        run(engine, RerankRequest(query="red", negatives=(Anchor("p01"),)))
    with pytest.raises(InvalidInput, match="no image vector"):
        run(engine, RerankRequest(anchors=(Anchor("noimg"),)))
    # with keywords and no visual weight, an image-less anchor still works on its other signals
    got = run(
        engine,
        RerankRequest(query="red", anchors=(Anchor("noimg"),), weights={"visual": 0.0}),
    )
    assert got.hits and "noimg" not in [h.id for h in got.hits]


def test_keyword_only_is_bm25_order_with_id_tie_break(engine: EmbeddedEngine) -> None:
    got = run(engine, RerankRequest(query="silk", k=50, explain=True))
    keys = [(-h.score, h.id) for h in got.hits]
    assert got.hits and keys == sorted(keys)
    assert got.hits[0].explanation is not None
