"""Waiting for queued indexing jobs and adding up their reports."""

from __future__ import annotations

from collections.abc import Sequence

from celery.result import AsyncResult
from tqdm import tqdm

from indexer.celery_app import app
from indexer.pipeline import BatchReport


def wait_for(job_ids: Sequence[str], timeout: float = 3600.0) -> BatchReport:
    """Block until every job has finished; a failed job is reported, not raised."""
    total = BatchReport()
    for job_id in tqdm(job_ids, unit="job", desc="waiting"):
        result = AsyncResult(job_id, app=app)
        try:
            total.add(BatchReport.from_dict(result.get(timeout=timeout)))
        except Exception as exc:  # noqa: BLE001 - any task failure is reported per job
            total.failed.append({"job": job_id, "reason": f"{type(exc).__name__}: {exc}"})
    return total
