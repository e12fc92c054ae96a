"""PCA for smaller vectors: fitted, stored with its model, and refusing other models' vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike import pca
from lookalike.engines.embedded import EmbeddedEngine
from lookalike.errors import ConfigError, InvalidInput
from tests.test_rerank_reference import build_catalogue


def test_low_rank_data_keeps_its_neighbours() -> None:
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((6, 64))
    x = rng.standard_normal((500, 6)) @ basis + 0.01 * rng.standard_normal((500, 64))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    fitted = pca.fit(x, 8, "m@1")
    assert fitted.dim == 8 and fitted.explained > 0.99
    y = fitted.reduce(x, "m@1")
    assert np.allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-5)
    full = np.argsort(-(x @ x[:20].T), axis=0)[:6]
    small = np.argsort(-(y @ y[:20].T), axis=0)[:6]
    overlap = np.mean([len(set(full[:, i]) & set(small[:, i])) / 6 for i in range(20)])
    assert overlap > 0.8
    again = pca.Pca.from_json(fitted.to_json())
    assert again.tag == fitted.tag and np.allclose(again.reduce(x[:3]), y[:3], atol=1e-5)
    assert fitted.tag.startswith("m@1+pca8-")


def test_wrong_model_or_shape_is_refused() -> None:
    x = np.random.default_rng(1).standard_normal((50, 10))
    fitted = pca.fit(x, 3, "m@1")
    with pytest.raises(InvalidInput):
        fitted.reduce(x, "other@2")
    with pytest.raises(InvalidInput):
        fitted.reduce(np.ones((2, 7)))
    with pytest.raises(InvalidInput):
        pca.fit(x, 10, "m@1")


def test_fitted_on_the_engine_and_stored_with_the_model(tmp_path: Path) -> None:
    docs, _ = build_catalogue()
    with EmbeddedEngine(tmp_path / "data") as engine:
        engine.upsert(docs)
        fitted = pca.fit_engine(engine, "image", 4)
        assert fitted.model == "img@1"
        stored = pca.load(engine, "image", "img@1")
        assert stored is not None and stored.tag == fitted.tag
        with pytest.raises(ConfigError):
            pca.load(engine, "image", "img@2")
        assert pca.load(engine, "text") is None


def test_cli_fits_and_drops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from lookalike.cli import app

    docs, _ = build_catalogue()
    with EmbeddedEngine(tmp_path / "data") as engine:
        engine.upsert(docs)
        full = engine.vectors(["p01"])["p01"]
    monkeypatch.setenv("LOOKALIKE_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    fitted = runner.invoke(app, ["pca", "--dim", "3"])
    assert fitted.exit_code == 0, fitted.output
    assert "stored PCA img@1+pca3-" in fitted.output
    with EmbeddedEngine(tmp_path / "data") as engine:
        assert engine.vectors(["p01"])["p01"].shape == (3,)
    both = runner.invoke(app, ["pca", "--dim", "3", "--drop"])
    assert both.exit_code == 2 and "--drop" in both.output
    dropped = runner.invoke(app, ["pca", "--drop"])
    assert dropped.exit_code == 0 and "PCA dropped" in dropped.output, dropped.output
    assert "no PCA was served" in runner.invoke(app, ["pca", "--drop"]).output
    with EmbeddedEngine(tmp_path / "data") as engine:
        np.testing.assert_allclose(engine.vectors(["p01"])["p01"], full, atol=1e-6)


def test_fitting_again_fits_the_full_vectors(tmp_path: Path) -> None:
    """A refit reads the stored vectors, not the reduced ones being served."""
    docs, vecs = build_catalogue()
    with EmbeddedEngine(tmp_path / "data") as engine:
        engine.upsert(docs)
        pca.fit_engine(engine, "image", 4)
        assert engine.vectors(["p01"])["p01"].shape == (4,)
        again = pca.fit_engine(engine, "image", 3)
        assert again.input_dim == 8 and engine.vectors(["p01"])["p01"].shape == (3,)
        np.testing.assert_allclose(
            engine.vectors(["p01"])["p01"], again.reduce(vecs["image"]["p01"])[0], atol=1e-5
        )
