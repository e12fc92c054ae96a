"""/clusters, /map, /gaps and their write endpoints: the fixed shapes, errors, write keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lookalike.api.app import create_app
from lookalike.engines.embedded import EmbeddedEngine
from lookalike.settings import Settings
from tests.helpers_analysis import grouped_docs
from tests.helpers_api import READ, READ_KEY, WRITE, WRITE_KEY
from tests.test_api import assert_error_shape

HOLES = ("g0-0", "g1-0")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    docs = grouped_docs(tmp_path / "img")
    for doc in docs:
        if doc.id in HOLES:
            doc.color = None
    engine = EmbeddedEngine(tmp_path / "data")
    engine.upsert(docs)
    engine.refresh()
    settings = Settings(data_dir=tmp_path / "data", api_keys=WRITE_KEY, read_keys=READ_KEY)
    with TestClient(create_app(settings, engine=engine)) as c:
        yield c
    engine.close()


def test_clusters_shape(client: TestClient) -> None:
    body = client.get("/clusters", params={"k": 3}).json()
    assert set(body) == {"k", "inertia", "clusters"}
    assert body["k"] == 3 and isinstance(body["inertia"], float)
    assert [c["cluster"] for c in body["clusters"]] == [0, 1, 2]
    for c in body["clusters"]:
        assert set(c) == {"cluster", "size", "representative", "members"}
        assert c["size"] == len(c["members"]) == 8
        assert len({m.split("-")[0] for m in c["members"]}) == 1
        rep = c["representative"]
        assert set(rep) == {"id", "title", "image", "image_url"}
        assert rep["id"] == c["members"][0] and rep["image"] is None  # no path to a reader
        assert rep["image_url"] == f"/products/{rep['id']}/images/0"
    again = client.get("/clusters", params={"k": 3}).json()
    assert again == body  # served from the cache, identical
    red = client.get("/clusters", params={"k": 2, "color": "red,green"}).json()
    assert sum(c["size"] for c in red["clusters"]) == 14  # the holes have no colour


def test_clusters_errors_use_the_one_shape(client: TestClient) -> None:
    assert_error_shape(client.get("/clusters", params={"k": 1}), 422, "invalid_input")
    error = assert_error_shape(client.get("/clusters", params={"k": 30}), 422, "invalid_input")
    assert "more than the 24 products" in error["message"]


def test_map_shape(client: TestClient) -> None:
    body = client.get("/map", params={"limit": 12}).json()
    assert set(body) == {"points"} and len(body["points"]) == 12
    for p in body["points"]:
        assert set(p) == {"id", "x", "y", "title", "category", "color"}
        assert 0.0 <= p["x"] <= 1.0 and 0.0 <= p["y"] <= 1.0
    cat = client.get("/map", params={"category": "cat2"}).json()
    assert {p["category"] for p in cat["points"]} == {"cat2"}


def test_gaps_propose_accept_reject(client: TestClient) -> None:
    body = client.get("/gaps", params={"field": "color", "limit": 50}).json()
    assert body["field"] == "color"
    by_id = {p["id"]: p for p in body["proposals"]}
    assert set(by_id) == set(HOLES)
    red = by_id["g0-0"]
    assert set(red) == {"id", "value", "confidence", "neighbours"}
    assert red["value"] == "red" and 0.8 < red["confidence"] <= 1
    assert set(red["neighbours"][0]) == {"id", "similarity", "value"}

    decision = {"id": "g0-0", "field": "color", "value": "red"}
    assert_error_shape(client.post("/gaps/accept", json=decision), 401, "unauthorized")
    assert_error_shape(client.post("/gaps/accept", json=decision, headers=READ), 403, "forbidden")
    done = client.post("/gaps/accept", json=decision, headers=WRITE)
    assert done.status_code == 200, done.text
    product = client.get("/products/g0-0").json()
    assert product["color"] == "red" and product["attributes"]["inferred"] == ["color"]

    before = client.get("/products/g1-0").json()
    no = {"id": "g1-0", "field": "color", "value": "green"}
    assert client.post("/gaps/reject", json=no, headers=WRITE).status_code == 200
    assert client.get("/products/g1-0").json() == before
    left = client.get("/gaps", params={"field": "color", "min_confidence": 0.5}).json()
    assert left["proposals"] == []  # g0-0 is filled, green was rejected for g1-0

    taken = client.post("/gaps/accept", json={**no, "id": "g1-1"}, headers=WRITE)
    assert_error_shape(taken, 422, "invalid_input")
    unknown = client.post("/gaps/accept", json={**no, "id": "zz"}, headers=WRITE)
    assert_error_shape(unknown, 404, "not_found")


def test_assign_a_cluster(client: TestClient) -> None:
    clusters = client.get("/clusters", params={"k": 3}).json()["clusters"]
    body = {"field": "usage", "value": "party", "cluster": 1, "k": 3}
    assert_error_shape(client.post("/clusters/assign", json=body), 401, "unauthorized")
    done = client.post("/clusters/assign", json=body, headers=WRITE)
    assert done.status_code == 200, done.text
    assert done.json()["updated"] == 8 and done.json()["ids"] == clusters[1]["members"]
    for pid in clusters[1]["members"]:
        attrs = client.get(f"/products/{pid}").json()["attributes"]
        assert attrs["usage"] == ["party"] and attrs["inferred"] == ["usage"]
    by_ids = client.post(
        "/clusters/assign", json={"field": "usage", "value": "gala", "ids": ["g0-3"]}, headers=WRITE
    )
    assert by_ids.json()["updated"] == 1
    neither = client.post("/clusters/assign", json={"field": "usage", "value": "x"}, headers=WRITE)
    assert_error_shape(neither, 422, "invalid_input")
