"""Write endpoints end to end: inline and queued ingest (a real Celery worker), deletes, jobs,
and a blue/green re-index started over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lookalike.api.app import create_app
from tests.conftest import SHARED, TF2_MOBILENET
from tests.helpers_api import WRITE, api_records, keyed_settings
from tests.test_api import assert_error_shape
from tests.test_reliability_support import Worker, private_broker, worker_env

V1 = SHARED / "models" / "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"


def poll(c: TestClient, job: str, timeout: float) -> dict[str, Any]:
    """GET /jobs/{job} until it has finished (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        state: dict[str, Any] = c.get(f"/jobs/{job}", headers=WRITE).json()
        if state["state"] not in {"PENDING", "STARTED", "RETRY"} or time.monotonic() > deadline:
            return state
        time.sleep(0.3)


@pytest.fixture
def inline_client(tmp_path: Path) -> Iterator[tuple[TestClient, list[dict[str, Any]]]]:
    records = api_records(tmp_path / "catalogue", 10)
    settings = keyed_settings(tmp_path / "data", tmp_path / "catalogue")
    with TestClient(create_app(settings)) as c:
        yield c, records


def test_inline_ingest_keeps_good_records_and_reports_bad_ones(
    inline_client: tuple[TestClient, list[dict[str, Any]]], tmp_path: Path
) -> None:
    c, records = inline_client
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes((tmp_path / "catalogue" / "img" / "p0.jpg").read_bytes())
    posted = [
        *records[:6],
        {"id": "bad-price", "images": ["https://example.com/x.jpg"], "price": -3},
        "not a record",
        dict(records[1]),  # a duplicate id in the same batch
        {"id": "no-images"},
        {**records[7], "id": "outside", "images": [str(outside)]},
    ]
    response = c.post("/products", json=posted, headers=WRITE)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mode"] == "inline" and body["accepted"] == 7 and body["jobs"] == []
    reasons = {r["index"]: r for r in body["rejected"]}
    assert set(reasons) == {6, 7, 8, 9}
    assert "price" in reasons[6]["reason"] and reasons[6]["id"] == "bad-price"
    assert "JSON object" in reasons[7]["reason"]
    assert "duplicate of record 1" in reasons[8]["reason"]
    assert "images" in reasons[9]["reason"]
    assert body["report"]["inserted"] == 7
    # The image outside the roots was refused per image, the product kept without a vector.
    assert len(body["report"]["image_errors"]) == 1
    hits = c.get("/products/p2/similar", params={"k": 10}).json()["hits"]
    assert {h["id"] for h in hits} >= {"p0", "p1", "p3"}
    assert c.get("/search", params={"q": "item"}).json()["total"] >= 6


def test_local_paths_need_image_roots(tmp_path: Path) -> None:
    records = api_records(tmp_path / "catalogue", 2)
    settings = keyed_settings(tmp_path / "data", tmp_path / "catalogue", image_roots="")
    with TestClient(create_app(settings)) as c:
        body = c.post("/products", json=records, headers=WRITE).json()
    assert body["accepted"] == 0
    assert all("LOOKALIKE_IMAGE_ROOTS" in r["reason"] for r in body["rejected"])


def test_deletes(inline_client: tuple[TestClient, list[dict[str, Any]]]) -> None:
    c, records = inline_client
    assert c.post("/products", json=records, headers=WRITE).json()["accepted"] == 10
    assert c.delete("/products/p3", headers=WRITE).json() == {"deleted": 1, "missing": []}
    assert_error_shape(c.delete("/products/p3", headers=WRITE), 404, "not_found")
    body = c.post("/products/delete", json={"ids": ["p4", "p5", "p5", "zz"]}, headers=WRITE).json()
    assert body == {"deleted": 2, "missing": ["zz"]}
    assert c.get("/health").json()["products"] == 7
    hits = c.get("/search", params={"q": "item", "k": 50}).json()["hits"]
    assert {"p3", "p4", "p5"}.isdisjoint(h["id"] for h in hits)


@contextmanager
def queued_api(tmp_path: Path, batch_size: int) -> Iterator[TestClient]:
    """The API queueing ingest batches of ``batch_size`` for one real Celery worker (its own
    Redis database; the worker's log is ``tmp_path/worker.log``)."""
    with private_broker() as broker:
        data = tmp_path / "data"
        worker = Worker(
            "indexer.celery_app",
            "lookalike",
            worker_env(broker, data, visibility=60),
            tmp_path / "worker.log",
            concurrency=1,
        )
        try:
            settings = keyed_settings(
                data,
                tmp_path / "catalogue",
                ingest_mode="queue",
                redis_url=broker,
                batch_size=batch_size,
            )
            with TestClient(create_app(settings)) as c:
                yield c
        finally:
            worker.stop()


@pytest.mark.slow
def test_queued_ingest_through_a_real_worker(tmp_path: Path) -> None:
    records = api_records(tmp_path / "catalogue", 30)
    with queued_api(tmp_path, batch_size=10) as c:
        response = c.post("/products", json=[*records, {"id": "x"}], headers=WRITE)
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["accepted"] == 30 and len(body["jobs"]) == 3
        assert [r["id"] for r in body["rejected"]] == ["x"]
        for job in body["jobs"]:
            state = poll(c, job, timeout=120)
            assert state["state"] == "SUCCESS", (
                state,
                (tmp_path / "worker.log").read_text()[-2000:],
            )
            assert state["kind"] == "index_batch" and state["result"]["inserted"] == 10
        assert c.get("/health").json()["products"] == 30
        assert c.get("/products/p29").json()["images"][0]["error"] is None
        hits = c.get("/products/p0/similar", params={"k": 5}).json()["hits"]
        assert len(hits) == 5


@pytest.mark.slow
def test_reindex_over_http_switches_models(tmp_path: Path) -> None:
    if not V1.exists():
        pytest.skip(f"{V1} is absent")
    records = api_records(tmp_path / "catalogue", 8)
    settings = keyed_settings(tmp_path / "data", tmp_path / "catalogue")
    with TestClient(create_app(settings)) as c:
        assert c.post("/products", json=records, headers=WRITE).json()["accepted"] == 8
        before = c.get("/products/p1").json()["models"]["image"]
        first = c.app.state.serving  # type: ignore[attr-defined]
        response = c.post("/admin/reindex", json={"image_model": str(V1)}, headers=WRITE)
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["state"] == "STARTED" and job["kind"] == "reindex"
        second = c.post("/admin/reindex", json={"image_model": str(TF2_MOBILENET)}, headers=WRITE)
        assert_error_shape(second, 409, "conflict")
        state = poll(c, job["id"], timeout=180)
        assert state["state"] == "SUCCESS", state
        assert state["result"]["products"] == 8 and state["result"]["switched"] is True
        after = c.get("/products/p1").json()["models"]["image"]
        assert after != before and "mobilenet_v1" in after
        # settings and engine were swapped together, and inline ingest follows the new models
        now = c.app.state.serving  # type: ignore[attr-defined]
        assert now.settings.image_model == str(V1) and now.engine is not first.engine
        changed = {**records[0], "title": "changed after the switch"}
        assert c.post("/products", json=[changed], headers=WRITE).json()["accepted"] == 1
        assert "mobilenet_v1" in c.get("/products/p0").json()["models"]["image"]
        assert len(c.get("/products/p1/similar", params={"k": 3}).json()["hits"]) == 3
        # A model that cannot load fails the job; the serving index is untouched.
        bad = c.post(
            "/admin/reindex", json={"image_model": str(tmp_path / "none.tflite")}, headers=WRITE
        )
        failed = poll(c, bad.json()["id"], timeout=60)
        assert failed["state"] == "FAILURE" and failed["error"]
        assert c.get("/products/p1").json()["models"]["image"] == after
