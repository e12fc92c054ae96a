"""Image sets on OpenSearch: the candidates' per-image vectors come back with ``_mget`` (source
filtering on ``images``) and are matched in Python, exactly as on the embedded engine.

Runs on the live node (``make test`` starts it), every request checked against the spec.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("opensearchpy")

from lookalike.engines.embedded import EmbeddedEngine  # noqa: E402
from lookalike.engines.opensearch.adapter import OpenSearchEngine  # noqa: E402
from reranker import Anchor, RerankRequest, run  # noqa: E402
from reranker.imagesets import SetOptions  # noqa: E402
from tests.opensearch_live import live_client, unique_prefix  # noqa: E402
from tests.test_imagesets_service import CATALOGUE, VISUAL_ONLY, product, rows  # noqa: E402


def catalogue_docs() -> list:  # type: ignore[type-arg]
    docs = [product(pid, vecs, f"shirt {pid}") for pid, vecs in CATALOGUE.items()]
    for doc in docs:
        doc.images.reverse()  # stored out of position order: rows still come back by position
    return docs


@pytest.fixture
def remote() -> Iterator[OpenSearchEngine]:
    engine = OpenSearchEngine(client=live_client(), prefix=unique_prefix(), drop_on_close=True)
    engine.upsert(catalogue_docs())
    engine.refresh()
    yield engine
    engine.close()


def test_adapter_returns_per_image_vectors_in_position_order(remote: OpenSearchEngine) -> None:
    got = remote.image_vectors(list(CATALOGUE))
    assert set(got) == set(CATALOGUE) - {"bare"}
    for pid, matrix in got.items():
        np.testing.assert_allclose(matrix, rows(pid), atol=1e-6)
    fetches = [r for r in remote.client.lookalike_requests if r[1].endswith("/_mget")]
    assert any(r[2].get("_source_includes") == "images" for r in fetches)


@pytest.mark.parametrize("method", ["max", "greedy", "assignment"])
def test_set_re_ranking_matches_the_embedded_engine(
    tmp_path: Path, method: str, remote: OpenSearchEngine
) -> None:
    local = EmbeddedEngine(tmp_path / "data")
    local.upsert(catalogue_docs())
    local.refresh()
    req = {
        "query": "shirt",  # every product's title holds it: the whole catalogue is the window
        "anchors": (Anchor("anchor"),),
        "weights": VISUAL_ONLY,
        "image_set": SetOptions(method),
        "explain": True,
        "k": 10,
    }
    # a set method is never pushed down into a cluster rescore: the adapter only fetches
    # vectors, the re-ranker matches them
    on_remote = run(remote, RerankRequest(**req)).to_dict()  # type: ignore[arg-type]
    on_local = run(local, RerankRequest(**req)).to_dict()  # type: ignore[arg-type]
    local.close()
    assert [h["id"] for h in on_remote["hits"]] == [h["id"] for h in on_local["hits"]]
    for a, b in zip(on_remote["hits"], on_local["hits"], strict=True):
        assert a["score"] == pytest.approx(b["score"], abs=1e-6)
        ea, eb = a["explanation"]["image_sets"]["anchor"], b["explanation"]["image_sets"]["anchor"]
        assert (ea["score"], ea["coverage"]) == pytest.approx((eb["score"], eb["coverage"]))
        positions = [(p["anchor_position"], p["candidate_position"]) for p in ea["pairs"]]
        assert positions == [(p["anchor_position"], p["candidate_position"]) for p in eb["pairs"]]
    split = next(h for h in on_remote["hits"] if h["id"] == "split")
    pairs = split["explanation"]["image_sets"]["anchor"]["pairs"]
    assert sorted((p["anchor_position"], p["candidate_position"]) for p in pairs)[0] == (0, 2)
