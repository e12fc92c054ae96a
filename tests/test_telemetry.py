"""/metrics as Prometheus scrapes it, request ids and access logs, and ingest counters from the
API, the CLI and a real Celery worker (pushed to a real Redis)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from lookalike.api.app import create_app
from lookalike.settings import get_settings
from lookalike.telemetry import INGEST_KEY, JsonFormatter, RequestIdFilter, request_id
from tests.conftest import make_records, write_catalogue
from tests.helpers_api import READ, WRITE, api_records, keyed_settings
from tests.test_reliability_support import private_broker

TELEMETRY_DB = 11  # a Redis database of its own: no other test pushes counters there
NO_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(c: TestClient, headers: dict[str, str] | None = None) -> Samples:
    """GET /metrics parsed by the Prometheus client's own parser: value by (name, labels)."""
    response = c.get("/metrics", headers=headers or READ)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def telemetry_redis() -> Iterator[str]:
    """A Redis database for this test's counters, emptied first; skips without Redis."""
    url = f"{get_settings().redis_url.rsplit('/', 1)[0]}/{TELEMETRY_DB}"
    try:
        redis.Redis.from_url(url).delete(INGEST_KEY)
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {url} ({exc})")
    yield url


def test_series_move_after_requests_and_an_inline_ingest(
    tmp_path: Path, telemetry_redis: str
) -> None:
    records = api_records(tmp_path / "catalogue", 6)
    settings = keyed_settings(tmp_path / "data", tmp_path / "catalogue", redis_url=telemetry_redis)
    with TestClient(create_app(settings)) as c:
        before = scrape(c)
        assert value(before, "lookalike_engine_products") == 0
        assert value(before, "lookalike_queue_depth", queue="lookalike") == 0
        posted = c.post("/products", json=[*records, {"id": "bad", "price": -1}], headers=WRITE)
        assert posted.status_code == 200, posted.text
        for pid in ("p1", "p2", "p1"):
            assert c.get(f"/products/{pid}").status_code == 200
        assert c.get("/products/nope").status_code == 404
        assert c.get("/no/such/path/123").status_code == 404
        after = scrape(c)

    route = {"method": "GET", "route": "/products/{product_id}"}
    assert value(after, "lookalike_http_requests_total", **route, status="200") == 3
    assert value(after, "lookalike_http_requests_total", **route, status="404") == 1
    assert value(after, "lookalike_http_request_duration_seconds_count", **route, status="200") == 3
    assert value(after, "lookalike_http_request_duration_seconds_sum", **route, status="200") > 0
    unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
    assert value(after, "lookalike_http_requests_total", **unmatched) == 1
    assert not any("/products/p1" in dict(labels).get("route", "") for _, labels in after)
    assert value(after, "lookalike_engine_products") == 6
    assert value(after, "lookalike_engine_up") == 1
    assert value(after, "lookalike_engine_vector_space", space="image",
                 model=settings.image_model, projection="") == 1  # fmt: skip
    api = {"role": "api"}
    assert value(after, "lookalike_ingest_products_total", **api, outcome="inserted") == 6
    assert value(after, "lookalike_ingest_images_total", **api, outcome="embedded") == 6
    assert value(after, "lookalike_ingest_records_rejected_total", **api) == 1
    # the counts live in Redis, where every process adds its own
    stored = redis.Redis.from_url(telemetry_redis).hgetall(INGEST_KEY)
    assert int(stored[b"api|products_inserted"]) == 6


def test_without_redis_the_api_serves_its_own_counts(tmp_path: Path) -> None:
    records = api_records(tmp_path / "catalogue", 3)
    settings = keyed_settings(tmp_path / "data", tmp_path / "catalogue", redis_url=NO_REDIS)
    with TestClient(create_app(settings)) as c:
        assert c.post("/products", json=records, headers=WRITE).status_code == 200
        again = c.post("/products", json=records, headers=WRITE).json()  # all unchanged now
        assert again["report"]["unchanged"] == 3
        samples = scrape(c)
    api = {"role": "api"}
    assert value(samples, "lookalike_ingest_products_total", **api, outcome="inserted") == 3
    assert value(samples, "lookalike_ingest_products_total", **api, outcome="unchanged") == 3
    assert not any(name == "lookalike_queue_depth" for name, _ in samples)


def test_metrics_need_a_read_key_when_reads_do(tmp_path: Path) -> None:
    settings = keyed_settings(
        tmp_path / "data", tmp_path, read_requires_key=True, redis_url=NO_REDIS
    )
    with TestClient(create_app(settings)) as c:
        refused = c.get("/metrics")
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        assert value(scrape(c, READ), "lookalike_engine_products") == 0
        assert c.get("/health").status_code == 200


def test_request_id_in_and_out_and_in_the_access_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = keyed_settings(tmp_path / "data", tmp_path, redis_url=NO_REDIS)
    with TestClient(create_app(settings)) as c, caplog.at_level(logging.INFO, "lookalike.access"):
        given = c.get("/health", headers={"X-Request-ID": "lb-1234.abc"})
        made = c.get("/products/x")
        forged = c.get("/health", headers={"X-Request-ID": "bad id\twith tab"})
    assert given.headers["x-request-id"] == "lb-1234.abc"
    assert len(made.headers["x-request-id"]) == 32 and made.status_code == 404
    assert forged.headers["x-request-id"] not in {"bad id\twith tab", ""}
    lines = [r for r in caplog.records if r.name == "lookalike.access"]
    assert [r.status for r in lines] == [200, 404, 200]  # type: ignore[attr-defined]
    assert lines[1].route == "/products/{product_id}"  # type: ignore[attr-defined]
    assert lines[1].path == "/products/x"  # type: ignore[attr-defined]
    # the id is in the context while the request runs; the log filter puts it on the record
    assert [RequestIdFilter().filter(r) for r in lines] == [True] * 3


def test_json_log_lines_carry_the_request_id() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("lookalike.test-json")
    log.addHandler(handler)
    log.propagate = False
    token = request_id.set("rid-42")
    try:
        log.warning("answered %s", "x", extra={"status": 200, "route": "/search"})
    finally:
        request_id.reset(token)
        log.removeHandler(handler)
    line: dict[str, Any] = json.loads(stream.getvalue())
    assert line["message"] == "answered x" and line["level"] == "WARNING"
    assert line["request_id"] == "rid-42" and line["status"] == 200 and line["route"] == "/search"


def test_cli_index_pushes_its_counts(
    tmp_path: Path, telemetry_redis: str, monkeypatch: pytest.MonkeyPatch, model_env: Path
) -> None:
    from lookalike.cli import app

    records = make_records(4)
    catalogue = write_catalogue(tmp_path / "cat", records)
    with catalogue.open("a") as fh:
        fh.write('{"id": "", "title": "no id"}\n')
    monkeypatch.setenv("REDIS_URL", telemetry_redis)
    result = CliRunner().invoke(app, ["index", str(catalogue), "--workers", "1"])
    assert result.exit_code == 0, result.output
    stored = redis.Redis.from_url(telemetry_redis).hgetall(INGEST_KEY)
    assert int(stored[b"cli|products_inserted"]) == 4
    assert int(stored[b"cli|images_embedded"]) == 4
    assert int(stored[b"cli|records_rejected"]) == 1


def test_celery_sends_task_events_for_flower() -> None:
    from indexer.celery_app import make_celery

    conf = make_celery(NO_REDIS).conf
    assert conf.worker_send_task_events is True and conf.task_send_sent_event is True


@pytest.mark.slow
def test_a_workers_counts_reach_the_apis_metrics(tmp_path: Path) -> None:
    from tests.test_api_ingest import poll, queued_api

    records = api_records(tmp_path / "catalogue", 12)
    with queued_api(tmp_path, batch_size=6) as c:
        body = c.post("/products", json=records, headers=WRITE).json()
        assert len(body["jobs"]) == 2
        for job in body["jobs"]:
            state = poll(c, job, timeout=120)
            log = (tmp_path / "worker.log").read_text()[-2000:]
            assert state["state"] == "SUCCESS", log
            assert state["done"] == state["total"] == 6  # the job's done/total
        samples = scrape(c)
    worker_role = {"role": "worker"}
    assert (
        value(samples, "lookalike_ingest_products_total", **worker_role, outcome="inserted") == 12
    )
    assert value(samples, "lookalike_ingest_images_total", **worker_role, outcome="embedded") == 12
    assert value(samples, "lookalike_queue_depth", queue="lookalike") == 0
    assert value(samples, "lookalike_engine_products") == 12


def test_lookalike_serve_is_scraped_and_logs_json(indexed: dict[str, object]) -> None:
    """The real server: Prometheus' parser reads its /metrics; its logs are JSON lines."""
    import subprocess
    import sys
    import time

    import httpx

    from tests.conftest import ROOT, served_env
    from tests.test_serve import free_port

    settings = indexed["settings"]
    port = free_port()
    env = served_env(settings, LOOKALIKE_LOG_FORMAT="json", REDIS_URL=NO_REDIS)
    command = [sys.executable, "-m", "lookalike.cli", "serve", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "no server"
                time.sleep(0.2)
        headers = {"X-Request-ID": "scrape-test-1"}
        similar = httpx.get(f"{base}/products/p0/similar", headers=headers, timeout=10)
        assert similar.headers["x-request-id"] == "scrape-test-1"
        text = httpx.get(f"{base}/metrics", timeout=10).text
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    route = {"method": "GET", "route": "/products/{product_id}/similar", "status": "200"}
    assert value(samples, "lookalike_http_requests_total", **route) == 1
    assert value(samples, "lookalike_engine_products") == 36
    lines = []
    for raw in output.splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    access = [line for line in lines if line.get("request_id") == "scrape-test-1"]
    assert len(access) == 1, output[-3000:]
    assert access[0]["logger"] == "lookalike.access" and access[0]["status"] == 200
    assert access[0]["route"] == "/products/{product_id}/similar"
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # the server's own, too


def test_a_500_keeps_its_request_id_and_is_counted(tmp_path: Path) -> None:
    from lookalike.api.state import serving

    settings = keyed_settings(tmp_path / "data", tmp_path, redis_url=NO_REDIS)
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as c:
        serving(app).engine.close()  # a real failure: the engine's database is gone
        failed = c.get("/products/p1", headers={"X-Request-ID": "broken-1"})
        assert failed.status_code == 500 and failed.headers["x-request-id"] == "broken-1"
        assert failed.json()["error"]["code"] == "internal_error"
        text = "\n".join(
            f"{s.name} {s.labels} {s.value}"
            for family in text_string_to_metric_families(c.get("/metrics").text)
            for s in family.samples
            if s.name == "lookalike_http_requests_total"
        )
        assert value(scrape(c), "lookalike_engine_up") == 0  # the scrape itself still answers
    assert "'status': '500'" in text and "/products/{product_id}" in text


@pytest.mark.slow
def test_lookalike_worker_logs_json_with_task_events_on(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT

    with private_broker() as broker:
        env = dict(
            os.environ,
            REDIS_URL=broker,
            LOOKALIKE_LOG_FORMAT="json",
            LOOKALIKE_DATA_DIR=str(tmp_path / "data"),
            LOOKALIKE_IMAGE_MODEL="color-histogram",
            LOOKALIKE_TEXT_MODEL="none",
            PYTHONUNBUFFERED="1",
        )
        command = [sys.executable, "-m", "lookalike.cli", "worker", "--concurrency", "1"]
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)  # fmt: skip
        lines: list[str] = []
        try:
            deadline = time.monotonic() + 60
            assert proc.stdout is not None
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line)
                if line.startswith("{") and json.loads(line)["message"].endswith("ready."):
                    break
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records and records[-1]["message"].endswith("ready."), "".join(lines)[-2000:]
    assert all(r["logger"].startswith("celery") for r in records)
    assert any("task events: ON" in line for line in lines)  # Flower sees the tasks
