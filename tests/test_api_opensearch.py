"""The HTTP API served over the live OpenSearch node: the same catalogue, the same requests,
the same answers as over the embedded engine (``make test`` starts the node)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

pytest.importorskip("opensearchpy")

from lookalike.api.app import create_app  # noqa: E402
from tests.helpers_api import WRITE, WRITE_KEY  # noqa: E402
from tests.opensearch_live import opensearch_url, unique_prefix  # noqa: E402

pytestmark = pytest.mark.opensearch

REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("/products/p0/similar", {"k": 8}),
    ("/products/p3/similar", {"k": 6, "color": "Blue", "price_max": 40}),
    ("/search", {"q": "circle", "k": 10}),
    ("/search", {"q": "circle", "anchor_ids": "p0,p1", "k": 8}),
    ("/search", {"anchor_ids": "p0", "category": "square", "k": 8}),
    ("/search", {"q": "item", "anchor_ids": "p2", "negative_ids": "p5", "k": 8, "offset": 4}),
]


@pytest.fixture(scope="module")
def clients(
    indexed: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, TestClient]]:
    """The session's indexed catalogue, and the same catalogue indexed into the live node."""
    from indexer.context import build_context
    from indexer.run import index_catalogue
    from lookalike.settings import Settings

    catalogue = Path(indexed["data_dir"]).parent / "catalogue" / "catalogue.jsonl"
    prefix = unique_prefix()
    values = indexed["settings"].model_dump()
    values.update(
        engine="opensearch",
        opensearch_url=opensearch_url(),
        opensearch_prefix=prefix,
        data_dir=tmp_path_factory.mktemp("api-os"),
        api_keys=WRITE_KEY,
    )
    remote_settings = Settings(**values)
    ctx = build_context(remote_settings)
    report = index_catalogue(catalogue, ctx)
    assert report.to_dict()["inserted"] == 36
    ctx.engine.refresh()
    ctx.engine.close()
    with (
        TestClient(create_app(indexed["settings"])) as local,
        TestClient(create_app(remote_settings)) as remote,
    ):
        yield local, remote
    from tests.opensearch_live import live_client

    live_client().indices.delete(index=f"{prefix}-*", params={"ignore_unavailable": "true"})


@pytest.mark.parametrize(("path", "params"), REQUESTS, ids=lambda v: str(v))
def test_same_answers_on_both_engines(
    clients: tuple[TestClient, TestClient], path: str, params: dict[str, Any]
) -> None:
    local, remote = clients
    a, b = local.get(path, params=params), remote.get(path, params=params)
    assert a.status_code == b.status_code == 200, b.text
    ja, jb = a.json(), b.json()
    assert jb["hits"], "the node answered no hits"
    assert [h["id"] for h in jb["hits"]] == [h["id"] for h in ja["hits"]]
    assert jb["total"] == ja["total"] and jb["anchors"] == ja["anchors"]
    for x, y in zip(ja["hits"], jb["hits"], strict=True):
        if "q" not in params:  # cosine scores agree; BM25 differs between the engines' indexes
            assert y["score"] == pytest.approx(x["score"], abs=1e-4)


def test_product_read_and_errors(clients: tuple[TestClient, TestClient]) -> None:
    local, remote = clients
    a, b = local.get("/products/p4").json(), remote.get("/products/p4").json()
    assert (b["id"], b["title"], b["revision"]) == (a["id"], a["title"], 1)
    missing = remote.get("/products/nope/similar")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert set(missing.json()["error"]) == {"code", "message", "details"}


def test_delete_through_the_api(clients: tuple[TestClient, TestClient]) -> None:
    _, remote = clients
    gone = remote.delete("/products/p35", headers=WRITE)
    assert gone.status_code == 200, gone.text
    assert remote.get("/products/p35").status_code == 404
    hits = remote.get("/products/p0/similar", params={"k": 50}).json()["hits"]
    assert "p35" not in {h["id"] for h in hits}
