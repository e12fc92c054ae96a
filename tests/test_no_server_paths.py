"""No read answer shows a reader the server's file system: every GET route, walked as an unkeyed
client (and as a read-only key), never contains the data folder or the image folder; hits and
products give ``image_url`` instead, and write-key holders still see the stored paths."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lookalike.api.app import create_app
from lookalike.api.state import serving
from lookalike.documents import Document, ImageEntry
from tests.helpers_api import READ, WRITE, api_records, keyed_settings

PARAMS = {"product_id": "p1", "position": "0", "session_id": "shopper-0001", "name": "app.js"}
WRITE_ONLY = {"/jobs/{job_id}"}  # needs a write key whatever it holds
QUERIES: dict[str, list[dict[str, Any]]] = {
    "/search": [
        {"q": "item", "explain": "true"},
        {"anchor_ids": "p2,miss", "explain": "true", "k": 20},
        {"q": "item", "session_id": "shopper-0001", "k": 20},
    ],
    "/products/{product_id}/similar": [{"explain": "true", "k": 20}],
    "/clusters": [{"k": 2}],
    "/map": [{"limit": 100}],
    "/gaps": [{"field": "brand"}],
}
PRODUCTS = ("p1", "miss", "remote", "nope")


@pytest.fixture(params=["embedded", "opensearch"])
def served(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[TestClient, list[str]]]:
    folder = tmp_path / "catalogue"
    records = api_records(folder, 8)
    records.append({**records[0], "id": "miss", "images": [str(folder / "img" / "gone.jpg")]})
    engine_settings: dict[str, Any] = {}
    if request.param == "opensearch":
        from tests.opensearch_live import opensearch_url, unique_prefix

        prefix = unique_prefix()
        engine_settings = {
            "engine": "opensearch",
            "opensearch_url": opensearch_url(),
            "opensearch_prefix": prefix,
        }
        request.addfinalizer(lambda: _drop_indices(prefix))
    settings = keyed_settings(tmp_path / "data", folder, **engine_settings)  # sessions: Redis
    with TestClient(create_app(settings)) as c:
        assert c.post("/products", json=records, headers=WRITE).status_code == 200
        remote = ImageEntry(0, "https://images.example.com/shoe.jpg", hash=None, error="timeout")
        engine = serving(c.app).engine  # type: ignore[arg-type]
        engine.upsert([Document(id="remote", title="remote", images=[remote])])
        engine.refresh()
        events = {"events": [{"type": "like", "product_id": "p1"}]}
        assert c.post("/sessions/shopper-0001/events", json=events).status_code == 200
        secrets = {str(tmp_path), str(tmp_path.resolve()), str(folder), str(tmp_path / "data")}
        yield c, sorted(secrets)


def _drop_indices(prefix: str) -> None:
    from tests.opensearch_live import live_client

    live_client().indices.delete(index=f"{prefix}-*", params={"ignore_unavailable": "true"})


def flat_routes(routes: list[Any]) -> Iterator[Any]:
    """The app's routes, included routers opened (FastAPI keeps them as one entry each)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from flat_routes(inner.routes)
        else:
            yield route


def read_urls(c: TestClient) -> list[str]:
    """Every GET route of the app, its path parameters filled, with each query to try."""
    urls = []
    for route in flat_routes(c.app.routes):  # type: ignore[attr-defined]
        methods = getattr(route, "methods", None) or set()
        path = getattr(route, "path", "")
        if "GET" not in methods or path in WRITE_ONLY:
            continue
        ids = PRODUCTS if "{product_id}" in path else (PARAMS["product_id"],)
        for pid in ids:
            url = path.format(**{**PARAMS, "product_id": pid})
            for query in QUERIES.get(path, [{}]):
                qs = "&".join(f"{k}={v}" for k, v in query.items())
                urls.append(f"{url}?{qs}" if qs else url)
    return urls


def leaked(response: Any, secrets: list[str]) -> list[str]:
    text = " ".join(f"{k}: {v}" for k, v in response.headers.items())
    if not response.headers.get("content-type", "").startswith("image/"):
        text += response.text
    return [s for s in secrets if s in text]


def walk(c: TestClient, secrets: list[str], headers: dict[str, str]) -> dict[str, str]:
    """GET every read URL; the ones whose answer names a secret folder."""
    found = {}
    for url in read_urls(c):
        response = c.get(url, headers=headers, follow_redirects=False)
        assert response.status_code < 500, (url, response.text)
        if leaked(response, secrets):
            found[url] = response.text[:300]
    return found


@pytest.mark.parametrize("headers", [{}, READ], ids=["unkeyed", "read-key"])
def test_no_read_route_shows_a_local_path(
    served: tuple[TestClient, list[str]], headers: dict[str, str]
) -> None:
    c, secrets = served
    urls = read_urls(c)
    assert {u.split("?")[0] for u in urls} >= {
        "/products/p1",
        "/products/miss/images/0",
        "/search",
        "/clusters",
        "/metrics",
        "/openapi.json",
        "/sessions/shopper-0001",
    }
    found = walk(c, secrets, headers)
    upload = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(upload, format="JPEG")
    files = {"file": ("q.jpg", upload.getvalue(), "image/jpeg")}
    by_image = c.post("/search/image", files=files, headers=headers)
    assert by_image.status_code == 200 and by_image.json()["hits"]
    if leaked(by_image, secrets):
        found["/search/image"] = by_image.text[:300]
    assert not found, found


def test_readers_get_image_urls(served: tuple[TestClient, list[str]]) -> None:
    c, _ = served
    hits = c.get("/products/p1/similar", params={"k": 20}).json()["hits"]
    assert hits and all("image" not in h for h in hits if h["id"] != "remote")
    for hit in hits:
        if hit["id"] == "miss":
            assert hit["image_url"] is None  # its only image failed
            continue
        assert hit["image_url"] == f"/products/{hit['id']}/images/0"
        assert c.get(hit["image_url"], params={"size": 32}).headers["content-type"] == "image/jpeg"
    product = c.get("/products/p1").json()
    assert product["images"][0]["url"] == "/products/p1/images/0"
    assert product["images"][0]["uri"] is None
    broken = c.get("/products/miss").json()["images"][0]
    assert broken["uri"] is None and "image 0" in broken["error"]
    remote = c.get("/products/remote").json()["images"][0]
    assert remote["url"] == remote["uri"] == "https://images.example.com/shoe.jpg"
    reps = c.get("/clusters", params={"k": 2}).json()["clusters"]
    assert all(r["representative"]["image_url"].startswith("/products/") for r in reps)
    assert all(r["representative"]["image"] is None for r in reps)


def test_write_keys_still_see_the_stored_paths(served: tuple[TestClient, list[str]]) -> None:
    c, secrets = served
    seen = {url.split("?")[0] for url in walk(c, secrets, WRITE)}  # the walk does see paths
    assert {"/products/p1", "/products/miss", "/search", "/clusters"} <= seen
    hits = c.get("/products/p1/similar", params={"k": 3}, headers=WRITE).json()["hits"]
    assert all(h["image"].startswith(secrets[0]) and h["image_url"] for h in hits)
    product = c.get("/products/miss", headers=WRITE).json()
    assert product["images"][0]["uri"].endswith("gone.jpg")
    error = c.get("/products/miss/images/0", headers=WRITE).json()["error"]["message"]
    assert "gone.jpg" in error


def test_the_schema_declares_image_urls(served: tuple[TestClient, list[str]]) -> None:
    c, _ = served
    spec = c.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    answer = spec["paths"]["/search"]["get"]["responses"]["200"]["content"]["application/json"]
    assert answer["schema"]["$ref"].endswith("/PublicSearchResult")
    assert "image_url" in schemas["PublicHit"]["properties"]
    assert "url" in schemas["ImageOut"]["properties"]
    assert "url" in schemas["ImageOut"]["required"]
    assert "image_url" in schemas["Representative"]["properties"]
