"""The Celery app the poison-message test runs: the real tasks plus two test tasks (no tests)."""

from __future__ import annotations

import os

import indexer.tasks  # noqa: F401 - registers the real tasks on the app
from indexer.celery_app import app
from indexer.deadletter import GuardedTask

__all__ = ["app"]


@app.task(name="test.crash", base=GuardedTask)
def crash(marker: str) -> None:
    """Kills its pool process on every delivery, like a decoder segfault would."""
    os._exit(1)


@app.task(name="test.ok", base=GuardedTask)
def ok(i: int) -> int:
    return i
