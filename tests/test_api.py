"""The HTTP API over a real indexed catalogue, and its one JSON error shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
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
    image = paths["/search/image"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(image)


def test_rerank_parameters_and_explanations(client: TestClient) -> None:
    params = {
        "q": "item",
        "anchor_ids": "p0:2,p4",
        "negative_ids": "p1",
        "w_visual": 0.7,
        "w_attributes": 0.5,
        "w_keyword": 0.2,
        "aggregation": "min",
        "keyword_norm": "rank",
        "explain": "true",
        "k": 6,
    }
    body = client.get("/search", params=params).json()
    assert body["anchors"] == ["p0", "p4"] and len(body["hits"]) == 6
    assert {"p0", "p1", "p4"}.isdisjoint(h["id"] for h in body["hits"])
    for hit in body["hits"]:
        expl = hit["explanation"]
        assert {"visual", "keyword"} <= set(expl["signals"])
        total = sum(s["contribution"] for s in expl["signals"].values())
        assert abs(total - hit["score"]) < 1e-5
        assert set(expl["anchors"]) <= {"p0", "p4"} and set(expl["negatives"]) == {"p1"}
    plain = client.get("/search", params={"q": "item", "anchor_ids": "p0"}).json()
    assert all("explanation" not in h for h in plain["hits"])


def test_similar_pages_and_extra_anchors(client: TestClient) -> None:
    whole = client.get("/products/p0/similar", params={"k": 12}).json()["hits"]
    pages = [
        h["id"]
        for offset in (0, 4, 8)
        for h in client.get("/products/p0/similar", params={"k": 4, "offset": offset}).json()[
            "hits"
        ]
    ]
    assert pages == [h["id"] for h in whole]
    body = client.get("/products/p0/similar", params={"anchor_ids": "p3", "k": 3}).json()
    assert body["anchors"] == ["p0", "p3"]


def test_rerank_parameter_errors(client: TestClient) -> None:
    assert_error_shape(
        client.get("/search", params={"anchor_ids": "p0", "aggregation": "median"}),
        422,
        "invalid_input",
    )
    many = ",".join(f"p{i}" for i in range(21))
    assert_error_shape(client.get("/search", params={"anchor_ids": many}), 422, "invalid_input")
    assert_error_shape(client.get("/search", params={"anchor_ids": "p0:-2"}), 422, "invalid_input")
    assert_error_shape(client.get("/search", params={"w_visual": -1}), 422, "invalid_input")
    assert_error_shape(
        client.get("/search", params={"anchor_ids": "p0", "negative_ids": "nope"}),
        404,
        "not_found",
    )


def test_search_by_uploaded_image(client: TestClient, tmp_path: Path) -> None:
    from tests.conftest import draw_product

    photo = draw_product(tmp_path / "q.jpg", "red", "circle", seed=99)
    with open(photo, "rb") as fh:
        response = client.post(
            "/search/image",
            params={"k": 5, "explain": "true"},
            files={"file": ("q.jpg", fh, "image/jpeg")},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["anchors"] == ["(query)"] and len(body["hits"]) == 5
    assert body["hits"][0]["color"] == "red"
    assert "(query)" in body["hits"][0]["explanation"]["anchors"]
    filtered = client.post(
        "/search/image",
        params={"color": "blue"},
        files={"file": ("q.jpg", photo.read_bytes(), "image/jpeg")},
    ).json()
    assert filtered["hits"] and all(h["color"] == "blue" for h in filtered["hits"])


def test_search_by_image_url_never_reads_local_files(client: TestClient) -> None:
    for url in ("/etc/passwd", "file:///etc/passwd", "../catalogue/img/p0.jpg"):
        assert_error_shape(client.post("/search/image", json={"url": url}), 422, "invalid_input")
    assert_error_shape(
        client.post("/search/image", content=b"not json", headers={"content-type": "text/plain"}),
        422,
        "invalid_input",
    )
    assert_error_shape(
        client.post("/search/image", files={"other": ("x", b"x")}), 422, "invalid_input"
    )
    assert_error_shape(
        client.post("/search/image", files={"file": ("x.jpg", b"not an image")}),
        422,
        "image_error",
    )


def test_q_visual_needs_a_joint_text_image_model(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    err = assert_error_shape(
        client.get("/search", params={"q_visual": "red dress"}), 422, "invalid_input"
    )
    assert "joint text-image" in err["message"]

    import lookalike.vectorizers as vectorizers

    anchor = client.get("/products/p5/similar", params={"k": 1}).json()  # p5 exists
    assert anchor["hits"]

    class FakeClip:
        name = "fake-clip"

        def embed_texts(self, texts: list[str]) -> np.ndarray:
            return self.vector[None, :]

    from lookalike.engines.embedded import EmbeddedEngine

    engine: EmbeddedEngine = client.app.state.serving.engine  # type: ignore[attr-defined]
    fake = FakeClip()
    fake.vector = engine.vectors(["p5"])["p5"]  # type: ignore[attr-defined]
    monkeypatch.setattr(vectorizers, "create_image_vectorizer", lambda *a, **k: fake)
    body = client.get("/search", params={"q_visual": "like p5", "k": 3}).json()
    assert body["hits"][0]["id"] == "p5" and body["anchors"] == ["(query)"]
