"""Waiting for queued indexing jobs and adding up their reports."""

from __future__ import annotations

from collections.abc import Sequence

from celery.result import AsyncResult

from indexer.celery_app import app
from indexer.pipeline import BatchReport
from lookalike.progress import Progress


def wait_for(
    job_ids: Sequence[str], timeout: float = 3600.0, progress: Progress | None = None
) -> BatchReport:
    """Block until every job has finished; a failed job is reported, not raised."""
    total = BatchReport()
    progress = progress or Progress()
    progress.stage("waiting for jobs", len(job_ids))
    for job_id in job_ids:
        result = AsyncResult(job_id, app=app)
        try:
            total.add(BatchReport.from_dict(result.get(timeout=timeout)))
        except Exception as exc:  # noqa: BLE001 - any task failure is reported per job
            total.failed.append({"job": job_id, "reason": f"{type(exc).__name__}: {exc}"})
        progress.advance()
    progress.finish()
    return total
