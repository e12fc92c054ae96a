"""The one ingest path: records in, unchanged ones skipped, batches written, a report out.

``ingest`` is what the CLI, the API (inline), a Celery worker and the blue/green reindex call;
``enqueue`` is what the CLI (``--queue``) and the API (queued) call to hand batches to
workers under the one task name. ``index_catalogue`` and ``enqueue_catalogue`` only read a
catalogue file into them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from indexer.context import ImagePool, IndexContext
from indexer.pipeline import BatchReport, PreparedBatch, finish_batch, start_batch
from lookalike.attributes import fit_vocabulary
from lookalike.engines import Engine
from lookalike.errors import EngineUnavailable, LookalikeError
from lookalike.fingerprints import record_fingerprint
from lookalike.records import CsvMapping, ProductRecord, RecordError, read_catalogue
from lookalike.telemetry import batch_counts

INDEX_BATCH_TASK = "lookalike.index_batch"  # the one task name producers send and workers run

# A broker that is down fails a send within about a second instead of Celery's long retries.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.3, "interval_max": 0.5}


@dataclass
class IndexReport:
    """The outcome of an ingest: batch totals plus records that were rejected."""

    batches: BatchReport = field(default_factory=BatchReport)
    record_errors: list[RecordError] = field(default_factory=list)
    products: int = 0

    def to_dict(self) -> dict[str, object]:
        out = self.batches.to_dict()
        out["products"] = self.products
        out["record_errors"] = [
            {"line": e.line, "id": e.id, "reason": e.reason} for e in self.record_errors
        ]
        return out


def chunks(records: Iterable[ProductRecord], size: int) -> Iterator[list[ProductRecord]]:
    """Records in lists of ``size`` (the last one shorter)."""
    batch: list[ProductRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def valid_records(
    path: Path, mapping: CsvMapping | None, errors: list[RecordError]
) -> Iterator[ProductRecord]:
    """A catalogue's valid records; rejected ones are appended to ``errors`` as they are met."""
    for item in read_catalogue(path, mapping):
        if isinstance(item, RecordError):
            errors.append(item)
        else:
            yield item.record


def batches(
    path: Path, mapping: CsvMapping | None, size: int, errors: list[RecordError]
) -> Iterator[list[ProductRecord]]:
    """Valid records in batches; rejected ones are appended to ``errors`` as they are met."""
    return chunks(valid_records(path, mapping, errors), size)


def image_pool(ctx: IndexContext, workers: int) -> ImagePool | None:
    """Worker processes for images, when asked for and the model can be loaded by name."""
    if workers <= 1 or ctx.image_model is None:
        return None
    return ImagePool(
        ctx.image_model, ctx.image_tensor, workers, color=ctx.color_vectorizer is not None
    )


def changed(records: list[ProductRecord], ctx: IndexContext) -> list[ProductRecord]:
    """The records whose fingerprint differs from the stored one: one engine read, no image."""
    stored = ctx.engine.fingerprints([r.id for r in records])
    if not stored:
        return records
    models = ctx.models()
    return [
        r
        for r in records
        if stored.get(r.id) != record_fingerprint(r.model_dump(mode="json"), models)
    ]


def ingest(
    records: Iterable[ProductRecord],
    ctx: IndexContext,
    *,
    batch_size: int = 64,
    workers: int = 1,
    pool: ImagePool | None = None,
    progress: Callable[[int], None] | None = None,
    report: IndexReport | None = None,
) -> IndexReport:
    """Index records in this process, batch by batch (a crash loses at most two batches).

    Records whose fingerprint is current are counted ``unchanged`` before any image is read
    or text embedded. With an image ``pool`` (or ``workers`` > 1, a pool for this call),
    images are decoded and embedded by worker processes while this process reads the next
    batch's images and writes the previous batch; batches are written in order.
    """
    report = report or IndexReport()
    own_pool = pool is None
    pool = pool or image_pool(ctx, workers)
    pending: PreparedBatch | None = None  # the batch whose images the workers are embedding
    done: PreparedBatch | None = None  # the batch before it, for images the two share
    # Beside busy workers, a multi-threaded text model here oversubscribes the cores: its
    # OpenMP threads spin-wait for each other (measured: twice the CPU per product, slower).
    limits: AbstractContextManager[object] = (
        threadpool_limits(1) if pool is not None else nullcontext()
    )
    try:
        with limits:
            for batch in chunks(records, max(1, batch_size)):
                report.products += len(batch)
                todo = changed(batch, ctx)
                report.batches.unchanged += len(batch) - len(todo)
                if ctx.meter is not None:
                    ctx.meter.add({"products_unchanged": len(batch) - len(todo)})
                if progress and len(todo) < len(batch):
                    progress(len(batch) - len(todo))
                if not todo:
                    continue
                prepared = start_batch(todo, ctx, pool, pending)
                if pending is not None:
                    done = _finish(pending, ctx, done, report, progress)
                pending = prepared
            if pending is not None:
                _finish(pending, ctx, done, report, progress)
    finally:
        if pool is not None and own_pool:
            pool.close()
    ctx.engine.refresh()
    return report


def _finish(
    prepared: PreparedBatch,
    ctx: IndexContext,
    previous: PreparedBatch | None,
    report: IndexReport,
    progress: Callable[[int], None] | None,
) -> PreparedBatch:
    # the vocabulary grows just before its batch is written, exactly as without workers
    encoder = fit_vocabulary(ctx.engine, prepared.records)
    batch = finish_batch(prepared, ctx, encoder, previous)
    report.batches.add(batch)
    if ctx.meter is not None:
        ctx.meter.add(batch_counts(batch))
    if progress:
        progress(len(prepared.records))
    return prepared


def enqueue(
    records: Iterable[ProductRecord],
    engine: Engine,
    producer: Any,
    batch_size: int = 64,
    report: IndexReport | None = None,
) -> tuple[list[str], IndexReport]:
    """Send one ``INDEX_BATCH_TASK`` job per batch (``producer``: a Celery app).

    Each batch's attribute vocabulary is stored before its job is sent, by this one process,
    so workers only read it and never race to extend it. A broker that is down is an
    ``EngineUnavailable``.
    """
    report = report or IndexReport()
    job_ids: list[str] = []
    try:
        for batch in chunks(records, max(1, batch_size)):
            fit_vocabulary(engine, batch)
            sent = producer.send_task(
                INDEX_BATCH_TASK,
                args=[[r.model_dump(mode="json") for r in batch]],
                retry_policy=PUBLISH_RETRY,
            )
            job_ids.append(sent.id)
            report.products += len(batch)
    except LookalikeError:
        raise
    except Exception as exc:  # kombu's and redis' connection errors vary by transport
        raise EngineUnavailable(f"the job queue is unavailable: {type(exc).__name__}") from exc
    return job_ids, report


def index_catalogue(
    path: Path,
    ctx: IndexContext,
    mapping: CsvMapping | None = None,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> IndexReport:
    """``ingest`` over a catalogue file; bad records are reported with their line numbers."""
    report = IndexReport()
    records = valid_records(path, mapping, report.record_errors)
    return ingest(
        records, ctx, batch_size=batch_size, workers=workers, progress=progress, report=report
    )


def enqueue_catalogue(
    path: Path,
    engine: Engine,
    mapping: CsvMapping | None = None,
    batch_size: int = 64,
    producer: Any = None,
) -> tuple[list[str], IndexReport]:
    """``enqueue`` over a catalogue file (the worker app's producer unless one is given)."""
    if producer is None:
        from indexer.celery_app import app as producer
    report = IndexReport()
    records = valid_records(path, mapping, report.record_errors)
    return enqueue(records, engine, producer, batch_size, report)
