"""Thin Celery tasks: they take records and call the one ingest path.

The index context (engine and models) is built once per worker process and reused.
"""

from __future__ import annotations

from contextlib import suppress
from functools import lru_cache
from typing import Any

from indexer.celery_app import app
from indexer.context import IndexContext, build_context
from indexer.deadletter import GuardedTask
from indexer.run import INDEX_BATCH_TASK, ingest
from lookalike.errors import EngineUnavailable
from lookalike.records import ProductRecord
from lookalike.settings import Settings


@lru_cache(maxsize=1)
def worker_context() -> IndexContext:
    return build_context(Settings(), role="worker")


# An engine that does not answer (an OpenSearch node restarting) is waited for: retries after
# 1, 2, 4, 8 s and then every 10 s, about 3 minutes in all, before the batch fails. (Five
# jittered retries gave up after ~15 s, before a restarted node was back.)
ENGINE_RETRIES = 20
ENGINE_RETRY_MAX_S = 10


@app.task(
    name=INDEX_BATCH_TASK,
    base=GuardedTask,
    bind=True,
    autoretry_for=(EngineUnavailable,),  # a clash or a rejected write fails at once
    retry_backoff=True,
    retry_backoff_max=ENGINE_RETRY_MAX_S,
    retry_jitter=False,
    max_retries=ENGINE_RETRIES,
)
def index_batch_task(self: Any, records: list[dict[str, Any]]) -> dict[str, object]:
    """Index a batch of already-validated records (images are absolute paths or URLs)."""
    batch = [ProductRecord.model_validate(r) for r in records]
    done = 0

    def progress(n: int) -> None:  # GET /jobs/{id} shows it while the batch runs
        nonlocal done
        done += n
        if self.request.id is None:  # called in-process, not as a queued job
            return
        with suppress(Exception):  # a progress report must never fail the batch
            self.update_state(state="STARTED", meta={"done": done, "total": len(batch)})

    progress(0)
    return ingest(
        batch, worker_context(), batch_size=len(batch), progress=progress
    ).batches.to_dict()
