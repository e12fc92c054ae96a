"""A writable catalogue and keyed settings for the hardened-API tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from tests.conftest import make_records, model_settings, write_catalogue

WRITE_KEY = "w-Jx8q2Lm4Vt9Rz1Kp7Hc3Nb6"
READ_KEY = "r-Qe5Wd2Fs8Yg4Ua7Io1Pl9Mk"
WRITE = {"X-API-Key": WRITE_KEY}
WRITE_BEARER = {"Authorization": f"Bearer {WRITE_KEY}"}
READ = {"X-API-Key": READ_KEY}


def api_records(folder: Path, n: int, prefix: str = "p") -> list[dict[str, Any]]:
    """Records with drawn images, their paths absolute (as an API client inside the roots)."""
    records = make_records(n, prefix)
    write_catalogue(folder, records)
    out = copy.deepcopy(records)
    for rec in out:
        rec["images"] = [str((folder / rel).resolve()) for rel in rec["images"]]
    return out


def keyed_settings(data_dir: Path, roots: Path, **overrides: object) -> Any:
    """Real MobileNet settings with one write key, one read key and inline ingest."""
    values: dict[str, object] = {
        "api_keys": WRITE_KEY,
        "read_keys": READ_KEY,
        "ingest_mode": "inline",
        "image_roots": str(roots.resolve()),
    }
    values.update(overrides)
    return model_settings(data_dir, **values)
