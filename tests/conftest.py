"""Shared fixtures: where ../shared is, the real MobileNet, and generated catalogues."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LOOKALIKE_SHARED_DIR", ROOT.parent / "shared"))
TF2_MOBILENET = SHARED / "models" / "tf2_mobilenet_v2_1.0_224_ptq.tflite"
FASHION = SHARED / "datasets" / "fashion-10k"

COLORS = {
    "red": (200, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 50, 200),
    "yellow": (230, 210, 30),
}
SHAPES = ("circle", "square", "stripes")


def needs_shared(path: Path) -> Path:
    """Skip (with the reason) when a file from ../shared is not there."""
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared (or LOOKALIKE_SHARED_DIR) holds it")
    return path


@pytest.fixture(scope="session")
def mobilenet_path() -> Path:
    return needs_shared(TF2_MOBILENET)


@pytest.fixture
def model_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mobilenet_path: Path) -> Path:
    """Settings for a real MobileNet, no text model, data in a temporary folder."""
    data = tmp_path / "data"
    monkeypatch.setenv("LOOKALIKE_DATA_DIR", str(data))
    monkeypatch.setenv("LOOKALIKE_IMAGE_MODEL", str(mobilenet_path))
    monkeypatch.setenv("LOOKALIKE_IMAGE_TENSOR", "GlobalPool")
    monkeypatch.setenv("LOOKALIKE_TEXT_MODEL", "none")
    return data


def draw_product(path: Path, color: str, shape: str, seed: int) -> Path:
    """A small product photo: a coloured shape on white, with a little noise."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (96, 96), "white")
    d = ImageDraw.Draw(img)
    rgb = COLORS[color]
    jitter = int(rng.integers(0, 8))
    if shape == "circle":
        d.ellipse((12 + jitter, 12, 84, 84 - jitter), fill=rgb)
    elif shape == "square":
        d.rectangle((16, 16 + jitter, 80 - jitter, 80), fill=rgb)
    else:
        for x in range(0, 96, 16):
            d.rectangle((x + jitter % 4, 0, x + 7, 95), fill=rgb)
    noise = rng.integers(0, 12, (96, 96, 3), dtype=np.uint8)
    arr = np.clip(np.asarray(img, dtype=np.int16) - noise, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=90)
    return path


def make_records(n: int, prefix: str = "p") -> list[dict]:
    """Records whose colour and shape cycle, each with its own generated image file name."""
    records = []
    names = list(COLORS)
    for i in range(n):
        color, shape = names[i % len(names)], SHAPES[(i // len(names)) % len(SHAPES)]
        records.append(
            {
                "id": f"{prefix}{i}",
                "title": f"{color} {shape} item {i}",
                "description": f"A {shape} pattern in {color}.",
                "brand": f"brand{i % 3}",
                "category": shape,
                "color": color,
                "price": float(10 + i),
                "attributes": {"size": ["S", "M"] if i % 2 else ["L"], "fit": "regular"},
                "images": [f"img/{prefix}{i}.jpg"],
            }
        )
    return records


def write_catalogue(folder: Path, records: list[dict], draw: bool = True) -> Path:
    """A JSON Lines catalogue plus the images its records name (when they follow make_records)."""
    folder.mkdir(parents=True, exist_ok=True)
    if draw:
        for i, rec in enumerate(records):
            for rel in rec["images"]:
                target = folder / rel
                if not target.exists() and rel.startswith("img/"):
                    draw_product(target, rec["color"], rec["category"], seed=i)
    path = folder / "catalogue.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def catalogue_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "catalogue"


def model_settings(data_dir: Path, **overrides: object) -> object:
    """Settings for the real MobileNet and no text model (fast), data in ``data_dir``."""
    from lookalike.settings import Settings

    values: dict[str, object] = {
        "data_dir": data_dir,
        "image_model": str(needs_shared(TF2_MOBILENET)),
        "image_tensor": "GlobalPool",
        "text_model": "none",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A 36-product catalogue indexed once for read-only tests (API, CLI, queries)."""
    from indexer.context import build_context
    from indexer.run import index_catalogue

    root = tmp_path_factory.mktemp("indexed")
    records = make_records(36)
    catalogue = write_catalogue(root / "catalogue", records)
    settings = model_settings(root / "data")
    ctx = build_context(settings)  # type: ignore[arg-type]
    report = index_catalogue(catalogue, ctx)
    ctx.engine.close()
    return {"settings": settings, "records": records, "report": report, "data_dir": root / "data"}


@pytest.fixture
def indexed_env(monkeypatch: pytest.MonkeyPatch, indexed: dict[str, object]) -> None:
    """The environment of a CLI run over the shared indexed catalogue (read-only commands)."""
    settings = indexed["settings"]
    monkeypatch.setenv("LOOKALIKE_DATA_DIR", str(settings.data_dir))  # type: ignore[attr-defined]
    monkeypatch.setenv("LOOKALIKE_IMAGE_MODEL", settings.image_model)  # type: ignore[attr-defined]
    monkeypatch.setenv("LOOKALIKE_IMAGE_TENSOR", "GlobalPool")
    monkeypatch.setenv("LOOKALIKE_TEXT_MODEL", "none")


def served_env(settings: object, **extra: str) -> dict[str, str]:
    """The environment of a real ``lookalike serve`` over ``settings``' data, without text."""
    return dict(
        os.environ,
        LOOKALIKE_DATA_DIR=str(settings.data_dir),  # type: ignore[attr-defined]
        LOOKALIKE_IMAGE_MODEL=settings.image_model,  # type: ignore[attr-defined]
        LOOKALIKE_TEXT_MODEL="none",
        **extra,
    )
