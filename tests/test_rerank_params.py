"""One request model and one result model for every surface (CLI options, API parameters)."""

from __future__ import annotations

import pytest

from lookalike.errors import InvalidInput
from lookalike.settings import Settings
from reranker import Anchor
from reranker.params import RerankParams
from reranker.request import SIGNALS
from reranker.results import Hit, SearchResult, SessionUsed


def test_cli_forms_and_query_parameters_build_the_same_model() -> None:
    from_cli = RerankParams.build(
        anchors=["a:2", "b"], negatives=["n"], weights={"visual": 0.5}, aggregation="max", k=3
    )
    from_api = RerankParams(
        anchor_ids="a:2,b", negative_ids="n", w_visual=0.5, aggregation="max", k=3
    )
    assert from_cli == from_api
    assert from_cli.anchors == (Anchor("a", 2.0), Anchor("b"))
    assert from_cli.weights == {"visual": 0.5}


def test_request_takes_limits_from_the_settings_and_puts_like_first() -> None:
    settings = Settings(candidates=77, default_k=4, max_k=9)
    req = RerankParams(anchor_ids="b,a:3").request(settings, like="a", query="shoe")
    assert req.anchors == (Anchor("a"), Anchor("b"))  # the product itself, weight 1, first
    assert (req.window, req.k, req.max_k, req.query) == (77, 4, 9, "shoe")
    with pytest.raises(InvalidInput, match="k must be between 1 and 9"):
        RerankParams(k=10).request(settings)


def test_mistakes_are_invalid_input_naming_the_parameter() -> None:
    with pytest.raises(InvalidInput, match="aggregation"):
        RerankParams.build(aggregation="median")
    with pytest.raises(InvalidInput, match="colour"):
        RerankParams.build(weights={"colour": 1.0})
    with pytest.raises(InvalidInput, match="w visual"):
        RerankParams.build(weights={"visual": -1.0})


def test_every_signal_has_a_weight_parameter() -> None:
    assert {f"w_{name}" for name in SIGNALS} <= set(RerankParams.model_fields)


def test_result_json_leaves_out_what_was_not_asked_for() -> None:
    plain = SearchResult(hits=[Hit(id="a", score=0.5, title="A")], total=1, anchors=["x"])
    data = plain.to_dict()
    assert "session" not in data and "explanation" not in data["hits"][0]
    assert data["hits"][0]["brand"] is None  # catalogue fields are always there, null or not
    used = SessionUsed(id="s", anchors=[], negatives=[], excluded=["o"])
    explained = SearchResult(
        hits=[Hit(id="a", score=0.5, title="A", explanation={"s": 1})], total=1, anchors=[]
    )
    both = explained.with_session(used).to_dict()
    assert both["session"]["excluded"] == ["o"] and both["hits"][0]["explanation"] == {"s": 1}
