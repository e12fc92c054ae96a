"""The error tree: which errors are worth a retry, and the one map from errors to HTTP."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lookalike import errors as err
from lookalike.api.errors import status_of


def test_core_errors_carry_no_http_status() -> None:
    for cls in vars(err).values():
        if isinstance(cls, type) and issubclass(cls, err.LookalikeError):
            assert "status" not in vars(cls), cls


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (err.InvalidFilter("x"), 422),
        (err.NotFound("x"), 404),
        (err.ImageError("x"), 422),
        (err.EngineError("x"), 503),
        (err.EngineUnavailable("x"), 503),
        (err.ConfigError("x"), 500),
        (err.MissingExtra("p", "e"), 500),
        (err.Unauthorized("x"), 401),
        (err.Forbidden("x"), 403),
        (err.Conflict("x"), 409),
        (err.PayloadTooLarge("x"), 413),
        (err.DeadLettered("x"), 500),
    ],
)
def test_api_maps_each_error_once(exc: err.LookalikeError, status: int) -> None:
    assert status_of(exc) == status


def test_celery_retries_only_transient_errors() -> None:
    from indexer.tasks import index_batch_task

    assert tuple(index_batch_task.autoretry_for) == (err.EngineUnavailable,)
    assert issubclass(err.EngineUnavailable, err.EngineError)


def test_opensearch_unreachable_and_overloaded_are_transient() -> None:
    osx = pytest.importorskip("opensearchpy.exceptions")
    from lookalike.engines.opensearch.errors import translated

    with pytest.raises(err.EngineUnavailable), translated("search"):
        raise osx.ConnectionError("N/A", "refused", None)
    with pytest.raises(err.EngineUnavailable), translated("bulk"):
        raise osx.TransportError(429, "too_many_requests", {})
    with pytest.raises(err.EngineError) as info, translated("bulk"):
        raise osx.TransportError(500, "boom", {})
    assert not isinstance(info.value, err.EngineUnavailable)


def test_missing_extra_names_a_command_that_installs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the CLI, as a user sees it: rich once ate ``[litert]`` as a style tag."""
    from typer.testing import CliRunner

    from lookalike.cli import app
    from tests.conftest import make_records, write_catalogue

    for name in ("ai_edge_litert", "ai_edge_litert.interpreter"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails: the extra is absent
    model = tmp_path / "model.tflite"
    model.write_bytes(b"not loaded")
    monkeypatch.setenv("LOOKALIKE_IMAGE_MODEL", str(model))
    monkeypatch.setenv("LOOKALIKE_TEXT_MODEL", "none")
    monkeypatch.setenv("LOOKALIKE_DATA_DIR", str(tmp_path / "data"))
    catalogue = write_catalogue(tmp_path / "cat", make_records(1))
    result = CliRunner().invoke(app, ["index", str(catalogue), "--workers", "1"])
    assert result.exit_code == 1, result.output
    assert "pip install 'lookalike[litert]'" in " ".join(result.output.split())
    assert "missing_extra" in result.output
