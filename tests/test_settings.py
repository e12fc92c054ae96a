"""Settings: environment, REDIS_URL alias, config file, and the README table."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from lookalike.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_environment_and_redis_alias(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOOKALIKE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOOKALIKE_IMAGE_MODEL", "/models/m.tflite")
    monkeypatch.setenv("LOOKALIKE_IMAGE_TENSOR", "GlobalPool")
    monkeypatch.setenv("REDIS_URL", "redis://example:6380/3")
    s = Settings()
    assert s.data_dir == tmp_path
    assert (s.image_model, s.image_tensor) == ("/models/m.tflite", "GlobalPool")
    assert s.redis_url == "redis://example:6380/3"
    assert s.engine == "embedded"


def test_config_file_below_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "lookalike.toml"
    config.write_text('text_model = "none"\nbatch_size = 7\ndata_dir = "/from/file"\n')
    monkeypatch.setenv("LOOKALIKE_CONFIG", str(config))
    monkeypatch.setenv("LOOKALIKE_BATCH_SIZE", "9")
    s = Settings()
    assert s.text_model == "none"
    assert s.batch_size == 9
    assert s.data_dir == Path("/from/file")


def test_invalid_value_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKALIKE_BATCH_SIZE", "0")
    with pytest.raises(ValueError, match="batch_size"):
        Settings()


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`((?:LOOKALIKE_[A-Z_]+)|REDIS_URL)`", readme))
    expected = {
        "REDIS_URL" if name == "redis_url" else f"LOOKALIKE_{name.upper()}"
        for name in Settings.model_fields
    } | {"LOOKALIKE_CONFIG", "LOOKALIKE_REDIS_URL"}
    assert expected <= documented, f"undocumented: {sorted(expected - documented)}"
    assert documented <= expected, f"documented but unknown: {sorted(documented - expected)}"


def test_list_settings_are_parsed_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOOKALIKE_API_KEYS", " k1 , k2,,")
    monkeypatch.setenv("LOOKALIKE_IMAGE_ROOTS", f"{tmp_path}/a{os.pathsep}{tmp_path}/b")
    config = tmp_path / "lookalike.toml"
    config.write_text('image_allowed_hosts = ["images.internal", "10.0.0.0/8"]\n')
    monkeypatch.setenv("LOOKALIKE_CONFIG", str(config))
    s = Settings()
    assert s.api_keys == ("k1", "k2") and s.read_keys == ()
    assert s.image_roots == (tmp_path / "a", tmp_path / "b")
    assert s.image_allowed_hosts == ("images.internal", "10.0.0.0/8")


def test_choices_are_literals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKALIKE_INGEST_MODE", "later")
    with pytest.raises(ValueError, match="ingest_mode"):
        Settings()
    monkeypatch.delenv("LOOKALIKE_INGEST_MODE")
    monkeypatch.setenv("LOOKALIKE_ENGINE", "elastic")
    with pytest.raises(ValueError, match="engine"):
        Settings()
