"""The HTTP API over a real indexed catalogue, and its one JSON error shape."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from lookalike.api.app import create_app


@pytest.fixture(scope="module")
def client(indexed: dict[str, object]) -> Iterator[TestClient]:
    with TestClient(create_app(indexed["settings"])) as c:  # type: ignore[arg-type]
        yield c


def assert_error_shape(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def test_similar_shape_and_anchor_excluded(client: TestClient) -> None:
    body = client.get("/products/p0/similar", params={"k": 5}).json()
    assert set(body) == {"hits", "total", "anchors"}
    assert len(body["hits"]) == 5 and body["anchors"] == ["p0"]
    for hit in body["hits"]:
        assert {"id", "score", "title"} <= set(hit)
        assert hit["id"] != "p0"
    scores = [h["score"] for h in body["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_similar_with_filters(client: TestClient) -> None:
    body = client.get(
        "/products/p0/similar", params={"k": 50, "color": "Blue", "price_max": 30}
    ).json()
    assert body["hits"]
    assert all(h["color"] == "blue" and h["price"] <= 30 for h in body["hits"])
    body = client.get("/products/p0/similar", params={"filter": "size=S"}).json()
    assert body["hits"]


def test_search_with_anchors_and_sort_by_similar(client: TestClient) -> None:
    body = client.get("/search", params={"q": "circle", "anchor_ids": "p0,p1", "k": 8}).json()
    assert body["anchors"] == ["p0", "p1"]
    assert {"p0", "p1"}.isdisjoint(h["id"] for h in body["hits"])
    browse = client.get("/search", params={"anchor_ids": "p0", "category": "circle"}).json()
    assert browse["hits"] and all(h["category"] == "circle" for h in browse["hits"])
    scores = [h["score"] for h in browse["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_keyword_search_without_anchors(client: TestClient) -> None:
    body = client.get("/search", params={"q": "item 7"}).json()
    assert body["hits"][0]["id"] == "p7"


def test_product_endpoint(client: TestClient) -> None:
    body = client.get("/products/p3").json()
    assert body["id"] == "p3" and body["revision"] == 1
    assert body["images"][0]["hash"] and body["images"][0]["error"] is None
    assert "image" in body["models"]


def test_errors_have_one_shape(client: TestClient) -> None:
    assert_error_shape(client.get("/products/nope/similar"), 404, "not_found")
    err = assert_error_shape(
        client.get("/search", params={"anchor_ids": "p0,nope"}), 404, "not_found"
    )
    assert "nope" in err["message"]
    assert_error_shape(client.get("/products/nope"), 404, "not_found")
    assert_error_shape(
        client.get("/search", params={"filter": "price=cheap"}), 422, "invalid_filter"
    )
    assert_error_shape(client.get("/search", params={"k": 0}), 422, "invalid_input")
    assert_error_shape(client.get("/search", params={"k": 100000}), 422, "invalid_input")
    assert_error_shape(client.get("/search", params={"q": "x" * 600}), 422, "invalid_input")
    assert_error_shape(client.get("/no/such/route"), 404, "not_found")
    assert_error_shape(client.post("/search"), 405, "method_not_allowed")


def test_hostile_queries_never_fail(client: TestClient) -> None:
    for q in [
        "men's shoes",
        "t-shirt",
        "-red",
        "color:red",
        '"',
        "AND",
        "(",
        "NEAR(",
        "title:boot",
        "*",
        "\\",
        "日本語",
        "' OR 1=1 --",
    ]:
        response = client.get("/search", params={"q": q})
        assert response.status_code == 200, (q, response.text)


def test_openapi_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/search", "/products/{product_id}/similar", "/products/{product_id}"} <= set(paths)
