"""Thin Celery tasks: they take records or ids and call the pure pipeline.

The index context (engine and models) is built once per worker process and reused.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from indexer.celery_app import app
from indexer.context import IndexContext, build_context
from indexer.deadletter import GuardedTask
from indexer.pipeline import index_batch
from lookalike.errors import EngineUnavailable
from lookalike.records import ProductRecord
from lookalike.settings import Settings


@lru_cache(maxsize=1)
def worker_context() -> IndexContext:
    return build_context(Settings())


@app.task(
    name="lookalike.index_batch",
    base=GuardedTask,
    bind=True,
    autoretry_for=(EngineUnavailable,),  # a clash or a rejected write fails at once
    retry_backoff=True,
    max_retries=5,
)
def index_batch_task(self: Any, records: list[dict[str, Any]]) -> dict[str, object]:
    """Index a batch of already-validated records (images are absolute paths or URLs)."""
    batch = [ProductRecord.model_validate(r) for r in records]
    return index_batch(batch, worker_context()).to_dict()


@app.task(name="lookalike.delete_products", base=GuardedTask)
def delete_products_task(ids: list[str]) -> int:
    return worker_context().engine.delete(ids)
