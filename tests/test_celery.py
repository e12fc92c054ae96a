"""The queued path: a real Redis broker and a real `lookalike worker` process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from indexer.queue import wait_for
from indexer.run import enqueue_catalogue
from lookalike.engines import open_engine
from lookalike.settings import get_settings
from tests.conftest import ROOT, make_records, model_settings, write_catalogue

pytestmark = pytest.mark.slow


@pytest.fixture
def broker() -> str:
    url = get_settings().redis_url
    try:
        client = redis.Redis.from_url(url)
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {url} ({exc}); scripts/ensure-redis starts one")
    client.delete("lookalike")  # a clean queue
    return url


@pytest.fixture
def worker(tmp_path: Path, broker: str, mobilenet_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    env = dict(
        os.environ,
        REDIS_URL=broker,
        LOOKALIKE_DATA_DIR=str(data),
        LOOKALIKE_IMAGE_MODEL=str(mobilenet_path),
        LOOKALIKE_IMAGE_TENSOR="GlobalPool",
        LOOKALIKE_TEXT_MODEL="none",
    )
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "lookalike.cli", "worker", "--concurrency", "2"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield data
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_thousand_products_indexed_exactly_once(tmp_path: Path, worker: Path) -> None:
    catalogue = write_catalogue(tmp_path / "catalogue", make_records(1000))
    settings = model_settings(worker)
    with open_engine(settings) as engine:  # type: ignore[arg-type]
        job_ids, report = enqueue_catalogue(catalogue, engine, batch_size=50)
    assert (len(job_ids), report.products, report.record_errors) == (20, 1000, [])
    start = time.monotonic()
    totals = wait_for(job_ids, timeout=300)
    assert totals.failed == []
    assert (totals.inserted, totals.updated, totals.unchanged) == (1000, 0, 0)
    assert totals.embedded_images == 1000
    with open_engine(settings) as engine:  # type: ignore[arg-type]
        engine.refresh()
        products = engine.get(engine.all_ids())
        assert len(products) == 1000
        assert {p.revision for p in products.values()} == {1}
        assert len(engine.vectors(list(products))) == 1000

        # The same catalogue again: every job runs, nothing changes.
        job_ids, _ = enqueue_catalogue(catalogue, engine, batch_size=50)
    again = wait_for(job_ids, timeout=300)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 1000)
    with open_engine(settings) as engine:  # type: ignore[arg-type]
        assert {p.revision for p in engine.get(engine.all_ids()).values()} == {1}
    assert time.monotonic() - start < 300
