"""Image sets through the HTTP API and the CLI, over the real indexed MobileNet catalogue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from lookalike.api.app import create_app
from lookalike.cli import app


@pytest.fixture(scope="module")
def client(indexed: dict[str, object]) -> Iterator[TestClient]:
    with TestClient(create_app(indexed["settings"])) as c:  # type: ignore[arg-type]
        yield c


def test_similar_with_a_set_method_explains_pairs(client: TestClient) -> None:
    params = {"k": 5, "set_method": "assignment", "explain": "true", "w_text": 0, "w_attributes": 0}
    body = client.get("/products/p0/similar", params=params).json()
    assert len(body["hits"]) == 5
    for hit in body["hits"]:
        entry = hit["explanation"]["image_sets"]["p0"]
        # one image each: one pair, both images covered, its score the visual value
        assert entry["method"] == "assignment" and entry["coverage"] == pytest.approx(1.0)
        assert [(p["anchor_position"], p["candidate_position"]) for p in entry["pairs"]] == [(0, 0)]
        assert entry["score"] == pytest.approx(hit["explanation"]["signals"]["visual"]["value"])
    default = client.get("/products/p0/similar", params={"k": 5, "explain": "true"}).json()
    assert all("image_sets" not in h["explanation"] for h in default["hits"])


def test_bad_set_parameters_are_422(client: TestClient) -> None:
    for params in (
        {"set_method": "median"},
        {"set_threshold": 0.5},  # mean has no threshold
        {"set_method": "greedy", "set_threshold": 2},
        {"set_method": "greedy", "set_m": 0},
    ):
        response = client.get("/products/p0/similar", params=params)
        assert response.status_code == 422, params
        assert set(response.json()) == {"error"}


def test_several_uploaded_images_are_one_query_set(client: TestClient, tmp_path: Path) -> None:
    from tests.conftest import draw_product

    front = draw_product(tmp_path / "a.jpg", "red", "circle", seed=98).read_bytes()
    back = draw_product(tmp_path / "b.jpg", "red", "circle", seed=99).read_bytes()
    files = [("file", ("a.jpg", front, "image/jpeg")), ("file", ("b.jpg", back, "image/jpeg"))]
    params = {"k": 5, "explain": "true", "set_method": "max", "w_text": 0, "w_attributes": 0}
    response = client.post("/search/image", params=params, files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["anchors"] == ["(query)"] and body["hits"][0]["color"] == "red"
    entry = body["hits"][0]["explanation"]["image_sets"]["(query)"]
    assert entry["anchor_images"] == 2 and entry["candidate_images"] == 1
    assert entry["pairs"][0]["anchor_position"] in (0, 1)
    assert entry["coverage"] == pytest.approx(2 / 3)
    # the same set with the default method: the set's mean vector, still red first
    mean = client.post("/search/image", params={"k": 3}, files=files).json()
    assert mean["hits"][0]["color"] == "red"
    too_many = [("file", (f"{i}.jpg", front, "image/jpeg")) for i in range(11)]
    response = client.post("/search/image", files=too_many)
    assert response.status_code == 422 and "at most 10" in response.json()["error"]["message"]
    flood = [("file", (f"{i}.jpg", b"x", "image/jpeg")) for i in range(500)]  # parsing stops
    response = client.post("/search/image", files=flood)
    assert 400 <= response.status_code < 500 and "error" in response.json()
    bad = client.post("/search/image", json={"urls": ["file:///etc/passwd"]})
    assert bad.status_code == 422


def test_cli_set_options(indexed: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    settings = indexed["settings"]
    monkeypatch.setenv("LOOKALIKE_DATA_DIR", str(settings.data_dir))  # type: ignore[attr-defined]
    monkeypatch.setenv("LOOKALIKE_IMAGE_MODEL", settings.image_model)  # type: ignore[attr-defined]
    monkeypatch.setenv("LOOKALIKE_IMAGE_TENSOR", "GlobalPool")
    monkeypatch.setenv("LOOKALIKE_TEXT_MODEL", "none")
    runner = CliRunner()
    args = ["similar", "p0", "--k", "3", "--set-method", "greedy", "--set-m", "1", "--json"]
    result = runner.invoke(app, [*args, "--explain"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(data["hits"]) == 3
    assert all(h["explanation"]["image_sets"]["p0"]["method"] == "greedy" for h in data["hits"])
    text = runner.invoke(app, ["similar", "p0", "--k", "2", "--set-method", "max", "--explain"])
    assert text.exit_code == 0 and "coverage" in text.output
    bad = runner.invoke(app, ["search", "item", "--anchor", "p0", "--set-method", "median"])
    assert bad.exit_code == 2 and "set method" in bad.output
