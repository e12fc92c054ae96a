"""Every error the API can produce has the one JSON shape, whatever layer produced it."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from lookalike.api.app import create_app
from lookalike.engines import open_engine
from lookalike.settings import Settings
from tests.helpers_api import READ, WRITE, WRITE_KEY
from tests.test_api import assert_error_shape


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", text_model="none", api_keys=WRITE_KEY, max_body_bytes=2048
    )


def test_every_status_has_the_one_shape(tmp_path: Path) -> None:
    with TestClient(create_app(_settings(tmp_path))) as c:
        assert_error_shape(c.post("/products", json=[{"id": "a"}]), 401, "unauthorized")
        assert_error_shape(
            c.post("/products", json=[{"id": "a"}], headers={"X-API-Key": READ["X-API-Key"]}),
            401,
            "unauthorized",
        )
        assert_error_shape(c.get("/products/nope"), 404, "not_found")
        assert_error_shape(c.get("/no/such/route"), 404, "not_found")
        response = c.put("/products/nope")
        assert_error_shape(response, 405, "method_not_allowed")
        assert "allow" in response.headers
        assert_error_shape(
            c.post("/products", content=b"[" + b" " * 4096, headers=WRITE), 413, "payload_too_large"
        )
        assert_error_shape(c.get("/search", params={"k": "many"}), 422, "invalid_input")
        assert_error_shape(c.get("/search", params={"filter": "??"}), 422, "invalid_filter")
        assert_error_shape(c.post("/products/delete", json={}, headers=WRITE), 422, "invalid_input")
        response = c.post(
            "/search/image", content=b"--x\r\n", headers={"content-type": "multipart/form-data"}
        )
        assert 400 <= response.status_code < 500
        assert set(response.json()["error"]) == {"code", "message", "details"}


def test_unexpected_failure_is_a_500_in_the_one_shape(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    engine = open_engine(settings)
    app = create_app(settings, engine=engine)
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get("/health").status_code == 200
        engine.close()  # a real failure: the engine's database is gone under the app
        error = assert_error_shape(c.get("/products/p1"), 500, "internal_error")
        assert error["message"] == "internal server error"  # no internals leak


def test_job_store_down_is_a_503(tmp_path: Path) -> None:
    settings = _settings(tmp_path).model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(settings)) as c:
        error = assert_error_shape(c.get("/jobs/abc", headers=WRITE), 503, "engine_error")
        assert "unavailable" in error["message"]


def test_queue_down_is_a_503_and_nothing_is_half_done(tmp_path: Path) -> None:
    settings = _settings(tmp_path).model_copy(
        update={"redis_url": "redis://127.0.0.1:1/0", "max_body_bytes": 25_000_000}
    )
    record = {"id": "a", "images": ["https://example.com/a.jpg"]}
    with TestClient(create_app(settings)) as c:
        error = assert_error_shape(
            c.post("/products", json=[record], headers=WRITE), 503, "engine_error"
        )
        assert "job queue is unavailable" in error["message"]
        assert c.get("/health").json()["products"] == 0
