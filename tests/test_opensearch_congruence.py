"""Congruence: the same fixture catalogue in the embedded engine and in OpenSearch gives the
same answers (k-NN top-k with and without filters, filtered sets, counts, keyword matches).

Needs a real cluster: ``OPENSEARCH_URL=http://127.0.0.1:9200 pytest -m opensearch``
(skipped with the reason otherwise)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from lookalike.engines.base import Engine
from lookalike.filters import And, Filter, Not, Or, Range, Term, Terms
from tests.test_engine_contract import random_catalogue

pytestmark = pytest.mark.opensearch

FILTERS: list[Filter | None] = [
    None,
    Term("color", "NAVY blue"),
    And((Terms("brand", ("acme", "Globex")), Range("price", lte=120))),
    Or((Term("attributes.material", "wool"), Not(Term("category", "shoes")))),
]


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Engine]]:
    url = os.environ.get("OPENSEARCH_URL")
    if not url:
        pytest.skip("congruence needs a real cluster: set OPENSEARCH_URL (docs/opensearch.md)")
    from lookalike.engines.embedded import EmbeddedEngine
    from lookalike.engines.opensearch import OpenSearchEngine

    docs = random_catalogue(200, seed=31)
    embedded = EmbeddedEngine(Path(tmp_path_factory.mktemp("congruence")) / "data")
    prefix = f"lookalike-test-{uuid.uuid4().hex[:12]}"
    cluster = OpenSearchEngine(url=url, prefix=prefix, drop_on_close=True)
    for eng in (embedded, cluster):
        eng.upsert(docs)
        eng.refresh()
    try:
        yield embedded, cluster
    finally:
        embedded.close()
        cluster.close()


@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: type(f).__name__)
def test_same_knn_top_k(engines: tuple[Engine, Engine], flt: Filter | None) -> None:
    embedded, cluster = engines
    rng = np.random.default_rng(5)
    for _ in range(5):
        q = rng.standard_normal(16).astype(np.float32)
        a, b = embedded.knn(q, 10, flt, exclude=["p001"]), cluster.knn(q, 10, flt, ["p001"])
        assert [c.id for c in a] == [c.id for c in b]
        np.testing.assert_allclose([c.score for c in a], [c.score for c in b], atol=1e-4)


@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: type(f).__name__)
def test_same_filtered_sets(engines: tuple[Engine, Engine], flt: Filter | None) -> None:
    embedded, cluster = engines
    assert embedded.count(flt) == cluster.count(flt)
    assert embedded.keyword_search(None, flt, 1000) == cluster.keyword_search(None, flt, 1000)


@pytest.mark.parametrize("text", ["dresses", "navy", "number 42"])
def test_same_keyword_matches(engines: tuple[Engine, Engine], text: str) -> None:
    embedded, cluster = engines
    a = {c.id for c in embedded.keyword_search(text, limit=1000)}
    b = {c.id for c in cluster.keyword_search(text, limit=1000)}
    assert a == b
    assert embedded.all_ids() == cluster.all_ids()


@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: type(f).__name__)
@pytest.mark.parametrize("aggregation", ["average", "max"])
def test_same_reranked_page(
    engines: tuple[Engine, Engine], flt: Filter | None, aggregation: str
) -> None:
    """More like this with two anchors and a negative: the embedded engine re-scores in Python,
    the cluster inside its ``rescore`` script (pushdown); the pages agree."""
    from reranker import RerankRequest, run
    from reranker.request import Anchor

    embedded, cluster = engines
    assert cluster.rescores
    req = RerankRequest(
        anchors=(Anchor("p002", 2.0), Anchor("p003")),
        negatives=(Anchor("p004"),),
        filters=flt,
        aggregation=aggregation,
        window=200,
        k=10,
    )
    a, b = run(embedded, req), run(cluster, req)
    assert [h.id for h in a.hits] == [h.id for h in b.hits]
    np.testing.assert_allclose([h.score for h in a.hits], [h.score for h in b.hits], atol=1e-4)
