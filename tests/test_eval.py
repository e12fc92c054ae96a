"""`lookalike eval` on a real indexed catalogue: labels, golden sets, JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lookalike.cli import app
from lookalike.engines import open_engine
from lookalike.errors import InvalidInput
from reranker.evaluation import LabelJudge, evaluate


def test_label_judge_grades() -> None:
    judge = LabelJudge(
        ["a", "b", "c", "d"], [["x", "red"], ["x", "red"], ["x", "blue"], ["y", "red"]]
    )
    assert judge.grades("a").tolist() == [0, 2, 1, 0]
    assert judge.group("d") == "y"


def test_eval_by_labels(indexed: dict[str, object]) -> None:
    with open_engine(indexed["settings"]) as engine:  # type: ignore[arg-type]
        report = evaluate(engine, ["category", "color"], k=5)
    assert report.overall.queries == 36
    assert set(report.per_value) == {"circle", "square", "stripes"}
    for m in [report.overall, *report.per_value.values()]:
        assert 0 <= m.recall <= 1 and 0 <= m.ndcg <= 1 and 0 <= m.mrr <= 1
    # Generated shapes in four colours: the image model groups them well.
    assert report.overall.precision >= 0.8 and report.overall.mrr >= 0.8


def test_eval_with_a_golden_set(indexed: dict[str, object], tmp_path: Path) -> None:
    golden = tmp_path / "golden.jsonl"
    # p0 is a red circle: p12 and p24 are drawn alike; p1 is a green circle.
    golden.write_text(
        json.dumps({"anchor": "p0", "relevant": {"p12": 2, "p24": 2, "p1": 1}})
        + "\n"
        + json.dumps({"anchor": "p5", "relevant": ["p17", "p29"]})
        + "\n"
    )
    with open_engine(indexed["settings"]) as engine:  # type: ignore[arg-type]
        report = evaluate(engine, [], k=10, golden=golden)
    assert report.overall.queries == 2 and report.judged_by == "golden set golden.jsonl"
    assert report.overall.recall > 0.5
    golden.write_text('{"anchor": "p0"}\n')
    with open_engine(indexed["settings"]) as engine, pytest.raises(InvalidInput, match="line 1"):  # type: ignore[arg-type]
        evaluate(engine, [], golden=golden)


def test_eval_command_json(indexed: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    settings = indexed["settings"]
    monkeypatch.setenv("LOOKALIKE_DATA_DIR", str(settings.data_dir))  # type: ignore[attr-defined]
    result = CliRunner().invoke(app, ["eval", "--label", "category", "--k", "3", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["k"] == 3 and body["overall"]["queries"] == 36
    table = CliRunner().invoke(app, ["eval", "--label", "color", "--limit", "8"])
    assert table.exit_code == 0 and "(overall)" in table.stdout
