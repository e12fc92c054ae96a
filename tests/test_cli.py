"""The CLI: the same answers as the API, clear errors, and the index command end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lookalike.cli import app
from tests.conftest import make_records, write_catalogue

runner = CliRunner()


@pytest.fixture
def env(indexed_env: None) -> None:
    """CLI runs over the shared indexed catalogue."""


def test_similar_json_matches_api_shape(env: None) -> None:
    result = runner.invoke(app, ["similar", "p0", "--k", "4", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert set(body) == {"hits", "total", "anchors"} and len(body["hits"]) == 4
    assert "p0" not in [h["id"] for h in body["hits"]]


def test_search_with_anchor_and_filters(env: None) -> None:
    result = runner.invoke(
        app,
        [
            "search",
            "item",
            "--anchor",
            "p2",
            "--filter",
            "color=red,blue",
            "--filter",
            "price<=40",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)["hits"]
    assert hits and all(h["color"] in ("red", "blue") and h["price"] <= 40 for h in hits)
    table = runner.invoke(app, ["search", "item", "--anchor", "p2"])
    assert table.exit_code == 0 and "p2" not in table.stdout.split()


def test_unknown_anchor_and_bad_filter_are_clear_errors(env: None) -> None:
    result = runner.invoke(app, ["similar", "nope"])
    assert result.exit_code == 2 and "not_found" in result.output and "nope" in result.output
    result = runner.invoke(app, ["search", "x", "--filter", "price=cheap"])
    assert result.exit_code == 2 and "price" in result.output


def test_index_command_reports_rejects(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mobilenet_path: Path
) -> None:
    monkeypatch.setenv("LOOKALIKE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOOKALIKE_IMAGE_MODEL", str(mobilenet_path))
    monkeypatch.setenv("LOOKALIKE_IMAGE_TENSOR", "GlobalPool")
    monkeypatch.setenv("LOOKALIKE_TEXT_MODEL", "none")
    catalogue = write_catalogue(tmp_path / "c", make_records(5))
    with open(catalogue, "a") as fh:
        fh.write('{"id": "bad"}\n')
    result = runner.invoke(app, ["index", str(catalogue), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["inserted"] == 5
    assert summary["record_errors"][0]["line"] == 6
    assert runner.invoke(app, ["stats", "--json"]).stdout.strip() == '{"products": 5}'
    assert runner.invoke(app, ["delete", "p0"]).exit_code == 0
    assert runner.invoke(app, ["stats", "--json"]).stdout.strip() == '{"products": 4}'


def test_search_with_weights_negatives_aggregation_and_explain(env: None) -> None:
    args = ["search", "item", "--anchor", "p0:2", "--anchor", "p4", "--negative", "p1"]
    args += ["--weight", "visual=0.7", "--weight", "keyword=0.3", "--aggregation", "min"]
    args += ["--keyword-norm", "rank", "--k", "5", "--offset", "1", "--window", "30"]
    result = runner.invoke(app, [*args, "--explain", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["anchors"] == ["p0", "p4"] and len(body["hits"]) == 5
    assert all("explanation" in h for h in body["hits"])
    assert {"p0", "p1", "p4"}.isdisjoint(h["id"] for h in body["hits"])
    table = runner.invoke(app, [*args, "--explain"])
    assert table.exit_code == 0 and "visual=" in table.output and "p1:" in table.output
    similar = runner.invoke(app, ["similar", "p0", "--anchor", "p3", "--k", "3", "--json"])
    assert json.loads(similar.stdout)["anchors"] == ["p0", "p3"]


def test_bad_rerank_options_are_clear_errors(env: None) -> None:
    result = runner.invoke(app, ["search", "x", "--anchor", "p0", "--weight", "colour=1"])
    assert result.exit_code == 2 and "weight" in result.output
    result = runner.invoke(app, ["search", "--anchor", "p0", "--aggregation", "median"])
    assert result.exit_code == 2 and "aggregation" in result.output
