"""`make demo` on a machine without ../shared: it draws, indexes and queries its own catalogue."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lookalike.demo import make_catalogue

ROOT = Path(__file__).resolve().parents[1]


def test_generated_catalogue(tmp_path: Path) -> None:
    path = make_catalogue(tmp_path, n=40)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 40 and len({r["id"] for r in records}) == 40
    assert all((tmp_path / r["images"][0]).is_file() for r in records)
    assert {r["category"] for r in records} == {"circle", "square", "stripes", "triangle"}


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_without_shared(tmp_path: Path) -> None:
    venv = Path(sys.executable).parent.parent
    if not (venv / ".installed").exists():
        pytest.skip(f"{venv} was not made by `make install`")
    out = subprocess.run(
        ["make", "demo", f"VENV={venv}", f"SHARED={tmp_path / 'no-shared'}",
         f"DEMO_DIR={tmp_path / 'demo'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    assert "has no fashion-10k" in text
    assert "inserted 240" in text
    assert "Red Round Cushion" in text  # more like product 0 (a red circle)
    assert "default CLIP model" in text
