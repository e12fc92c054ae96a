"""Re-ranking pushed down into the live OpenSearch node gives the page the Python re-ranker gives.

The same index is read by two engines: one hands the formula to the node (a ``rescore`` with
the Painless script, k-NN or BM25 first pass computed by the node itself), the other fetches
the window's vectors with ``_mget`` and re-scores in Python (``reranker.scoring``); both must
return the same page. Every body goes through the spec-checking connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("opensearchpy", reason="install the opensearch extra")

from lookalike.engines.opensearch import OpenSearchEngine  # noqa: E402
from reranker import RerankRequest, run  # noqa: E402
from reranker.request import Anchor  # noqa: E402
from tests.opensearch_live import live_client, unique_prefix  # noqa: E402
from tests.test_engine_contract import make_doc  # noqa: E402

Json = dict[str, Any]
COLORS = ("Red", "Blue", "Green")


@pytest.fixture(scope="module")
def engines() -> Iterator[tuple[OpenSearchEngine, OpenSearchEngine]]:
    """One live index seen with pushdown on and off."""
    prefix = unique_prefix()
    pushed = OpenSearchEngine(client=live_client(), prefix=prefix, drop_on_close=True)
    python = OpenSearchEngine(client=live_client(), prefix=prefix, pushdown=False)
    rng = np.random.default_rng(5)
    words = ("shirt", "dress", "blue", "linen")
    docs = [
        make_doc(
            f"p{i:02d}",
            rng,
            n_images=1 + i % 3,
            title=" ".join(rng.choice(words, size=3)),
            color=COLORS[i % 3],
        )
        for i in range(40)
    ]
    pushed.upsert(docs)
    pushed.refresh()
    yield pushed, python
    pushed.close()


def searches_since(engine: OpenSearchEngine, before: int) -> list[Json]:
    sent = engine.client.lookalike_requests[before:]
    return [body for _, path, _, body in sent if path.endswith("_search")]


REQUESTS = {
    "more like this": dict(anchors=(Anchor("p00"),)),
    "weighted anchors and a negative, average": dict(
        anchors=(Anchor("p01", 2.0), Anchor("p02")), negatives=(Anchor("p03"),)
    ),
    "max": dict(anchors=(Anchor("p01"), Anchor("p04", 3.0)), aggregation="max"),
    "min": dict(anchors=(Anchor("p01"), Anchor("p04")), aggregation="min"),
    "sum with text weight": dict(
        anchors=(Anchor("p05"), Anchor("p06")), aggregation="sum", weights={"text": 0.8}
    ),
    "keyword blended": dict(query="blue shirt", anchors=(Anchor("p07"),), weights={"keyword": 0.5}),
    "keyword, second page": dict(query="linen", anchors=(Anchor("p08"),), offset=5),
    "small window": dict(anchors=(Anchor("p09"),), window=12),
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_pushdown_page_equals_python_page(
    engines: tuple[OpenSearchEngine, OpenSearchEngine], name: str
) -> None:
    pushed, python = engines
    req = RerankRequest(k=8, **REQUESTS[name])  # type: ignore[arg-type]
    before = len(pushed.client.lookalike_requests)
    got = run(pushed, req)
    sent = searches_since(pushed, before)
    assert any("rescore" in body for body in sent), "the page was not re-scored in the cluster"
    want = run(python, req)
    assert [h.id for h in got.hits] == [h.id for h in want.hits]
    np.testing.assert_allclose([h.score for h in got.hits], [h.score for h in want.hits], atol=1e-4)
    assert got.total == want.total
    assert got.anchors == want.anchors


def test_query_vector_is_an_anchor_in_the_cluster(
    engines: tuple[OpenSearchEngine, OpenSearchEngine],
) -> None:
    pushed, python = engines
    vec = python.vectors(["p11"])["p11"]
    req = RerankRequest(query_vectors={"image": vec}, k=5)
    got, want = run(pushed, req), run(python, req)
    assert [h.id for h in got.hits] == [h.id for h in want.hits]
    assert got.hits[0].id == "p11"  # its own vector is the nearest


@pytest.mark.parametrize(
    "options", [dict(explain=True), dict(keyword_norm="rank", query="shirt")], ids=str
)
def test_requests_the_script_cannot_answer_stay_in_python(
    engines: tuple[OpenSearchEngine, OpenSearchEngine], options: Json
) -> None:
    pushed, python = engines
    req = RerankRequest(anchors=(Anchor("p00"),), k=5, **options)  # type: ignore[arg-type]
    before = len(pushed.client.lookalike_requests)
    got = run(pushed, req)
    sent = searches_since(pushed, before)
    assert sent and not any("rescore" in body for body in sent)
    assert [h.id for h in got.hits] == [h.id for h in run(python, req).hits]
