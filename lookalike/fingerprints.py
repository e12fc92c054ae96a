"""A record's fingerprint: what it takes to know, before any image is read, that it is current.

It hashes the catalogue record (fields and image sources), the models and formats that would
embed it and, for local image files, their size and modification time (a ``stat``, not a
read). The indexer compares it with ``Engine.fingerprints()`` and skips equal records before
fetching an image or embedding a text, so re-indexing an unchanged catalogue costs reading it.

A product stored with an image error gets a ``partial:`` fingerprint, which no record ever
equals: its images are tried again on the next run. An image behind an unchanged URL whose
content changed is not noticed (change the URL, or ``lookalike reindex``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from lookalike.images import has_scheme

PARTIAL = "partial:"


def _stat(source: str) -> list[int] | None:
    """Size and mtime of a local image file (None for URLs and files that cannot be stat'ed)."""
    if has_scheme(source):
        return None
    try:
        st = os.stat(source)
    except (OSError, ValueError):
        return None
    return [st.st_size, st.st_mtime_ns]


def record_fingerprint(record: Mapping[str, Any], models: Mapping[str, str]) -> str:
    """The fingerprint of a record (as ``ProductRecord.model_dump(mode="json")``) under models."""
    images: Sequence[str] = record.get("images") or []
    payload = json.dumps(
        [dict(record), [_stat(s) for s in images], sorted(models.items())],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def stored_fingerprint(fingerprint: str, complete: bool) -> str:
    """What to store: the fingerprint, or a ``partial:`` one when an image failed."""
    return fingerprint if complete else PARTIAL + fingerprint
