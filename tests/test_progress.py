"""Every long job shows progress with a total: a bar in the CLI (one style, lookalike/cli/
progress.py), ``done``/``total`` in an HTTP job's state."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from lookalike.api.app import create_app
from lookalike.cli import app
from lookalike.cli.progress import catalogue_length
from lookalike.progress import Progress
from tests.conftest import TF2_MOBILENET, make_records, write_catalogue
from tests.helpers_api import WRITE, api_records, keyed_settings

runner = CliRunner()


def bar(output: str, name: str) -> tuple[int, int]:
    """The last state of the bar called ``name``: (done, total)."""
    found = re.findall(rf"{re.escape(name)}: +\d+%\|[^|]*\| (\d+)/(\d+)", output)
    assert found, f"no {name!r} bar with a total in:\n{output[-2000:]}"
    done, total = found[-1]
    return int(done), int(total)


@pytest.fixture
def env(indexed_env: None) -> None:
    """CLI runs over the shared indexed catalogue."""


def test_index_bar_knows_the_catalogue_length(tmp_path: Path, model_env: Path) -> None:
    catalogue = write_catalogue(tmp_path / "cat", make_records(6))
    with catalogue.open("a") as fh:
        fh.write('{"id": "", "title": "rejected"}\n\n')
    assert catalogue_length(catalogue) == 7  # blank lines are not records
    result = runner.invoke(app, ["index", str(catalogue), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert re.search(r"indexing: +\d+%\|[^|]*\| \d/7", result.output)  # the total while it runs
    assert bar(result.output, "indexing") == (6, 6)  # closed at what was indexed (1 rejected)


def test_csv_length_counts_rows(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text('id,title\n1,"two\nlines"\n2,b\n', encoding="utf-8")
    assert catalogue_length(path) == 2
    assert catalogue_length(tmp_path / "missing.jsonl") is None


def test_clusters_k_range_map_and_gaps_show_bars(env: None, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["clusters", "--k", "3", "--k-range", "2:5", "--out", str(tmp_path / "c")]
    )
    assert result.exit_code == 0, result.output
    assert bar(result.output, "k-means per k") == (4, 4)
    result = runner.invoke(app, ["map", "--out", str(tmp_path / "m.png"), "--grid", "4"])
    assert result.exit_code == 0, result.output
    assert bar(result.output, "tsne of 36 products") == (1, 1)
    done, total = bar(result.output, "thumbnails")
    assert done == total and 1 <= total <= 16
    result = runner.invoke(app, ["gaps", "propose", "--field", "pattern"])
    assert result.exit_code == 0, result.output
    assert bar(result.output, "voting on pattern") == (36, 36)  # nobody has a pattern


def test_eval_bars(env: None) -> None:
    result = runner.invoke(app, ["eval", "--label", "category"])
    assert result.exit_code == 0, result.output
    assert bar(result.output, "evaluating") == (36, 36)  # every product is a query
    result = runner.invoke(app, ["eval", "--holdout", "--label", "category"])
    assert result.exit_code == 0, result.output
    done, total = bar(result.output, "evaluating held-out")
    assert done == total and 0 < total < 36  # the test side of the split


def test_tune_bar(tmp_path: Path, model_env: Path) -> None:
    catalogue = write_catalogue(tmp_path / "cat", make_records(12))  # its own: tune writes
    assert runner.invoke(app, ["index", str(catalogue), "--workers", "1"]).exit_code == 0
    result = runner.invoke(app, ["tune", "--label", "category", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert bar(result.output, "tuning") == (2, 2)


def test_reindex_bar(tmp_path: Path, model_env: Path) -> None:
    catalogue = write_catalogue(tmp_path / "cat", make_records(5))
    assert runner.invoke(app, ["index", str(catalogue), "--workers", "1"]).exit_code == 0
    result = runner.invoke(app, ["reindex", "--model", str(TF2_MOBILENET), "--image-tensor",
                                 "GlobalPool"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert bar(result.output, "re-indexing") == (5, 5)


def test_progress_counts_by_stage() -> None:
    progress = Progress()
    progress.stage("one", 3)
    progress.advance(2)
    assert progress.snapshot() == {"stage": "one", "done": 2, "total": 3}
    progress.stage("two", None)
    assert progress.snapshot() == {"stage": "two", "done": 0, "total": None}


def test_reindex_over_http_reports_done_and_total(tmp_path: Path) -> None:
    records = api_records(tmp_path / "catalogue", 7)
    settings = keyed_settings(
        tmp_path / "data", tmp_path / "catalogue", redis_url="redis://127.0.0.1:1/0"
    )
    with TestClient(create_app(settings)) as c:
        assert c.post("/products", json=records, headers=WRITE).json()["accepted"] == 7
        body = {"image_model": str(TF2_MOBILENET), "image_tensor": "GlobalPool"}
        started = c.post("/admin/reindex", json=body, headers=WRITE)
        assert started.status_code == 202, started.text
        job = started.json()["id"]
        seen = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = c.get(f"/jobs/{job}", headers=WRITE).json()
            seen.append((state["done"], state["total"]))
            if state["state"] != "STARTED":
                break
            time.sleep(0.05)
    assert state["state"] == "SUCCESS", state
    assert seen[-1] == (7, 7)
    assert all(total in (None, 7) and (done or 0) <= 7 for done, total in seen)


@pytest.mark.slow
def test_index_queue_wait_shows_the_jobs_bar(tmp_path: Path, mobilenet_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.test_reliability_support import Worker, private_broker, worker_env

    catalogue = write_catalogue(tmp_path / "cat", make_records(9))
    with private_broker() as broker:
        env = worker_env(broker, tmp_path / "data", visibility=60)
        worker = Worker("indexer.celery_app", "lookalike", env, tmp_path / "w.log", concurrency=1)
        try:
            command = [sys.executable, "-m", "lookalike.cli", "index", str(catalogue), "--queue",
                       "--wait", "--batch-size", "3"]  # fmt: skip
            done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True,
                                  timeout=300)  # fmt: skip
        finally:
            worker.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    assert bar(done.stderr, "waiting for jobs") == (3, 3)
    assert "inserted 9" in done.stderr
