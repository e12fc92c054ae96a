"""Driving the pipeline over a catalogue file: in-process with a progress bar, or via Celery."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from threadpoolctl import threadpool_limits

from indexer.context import ImagePool, IndexContext
from indexer.pipeline import BatchReport, PreparedBatch, finish_batch, prepare_batch
from indexer.vocabulary import fit_vocabulary
from lookalike.engines import Engine
from lookalike.records import CsvMapping, ProductRecord, RecordError, read_catalogue


@dataclass
class IndexReport:
    """The outcome of indexing a catalogue: batch totals plus records that were rejected."""

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


def batches(
    path: Path, mapping: CsvMapping | None, size: int, errors: list[RecordError]
) -> Iterator[list[ProductRecord]]:
    """Valid records in batches; rejected ones are appended to ``errors`` as they are met."""
    batch: list[ProductRecord] = []
    for item in read_catalogue(path, mapping):
        if isinstance(item, RecordError):
            errors.append(item)
            continue
        batch.append(item.record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def index_catalogue(
    path: Path,
    ctx: IndexContext,
    mapping: CsvMapping | None = None,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> IndexReport:
    """Index a catalogue in this process, batch by batch (a crash loses at most two batches).

    With ``workers`` > 1, images are decoded and embedded by that many worker processes
    while this process reads the next batch's images and writes the previous batch to the
    engine; batches are still written one at a time, in catalogue order.
    """
    report = IndexReport()
    pool = _pool(ctx, workers)
    pending: PreparedBatch | None = None  # the batch whose images the workers are embedding
    done: PreparedBatch | None = None  # the batch before it, for images the two share
    # Beside busy workers, a multi-threaded text model here oversubscribes the cores: its
    # OpenMP threads spin-wait for each other (measured: twice the CPU per product, slower).
    limits: AbstractContextManager[object] = (
        threadpool_limits(1) if pool is not None else nullcontext()
    )
    try:
        with limits:
            for batch in batches(path, mapping, batch_size, report.record_errors):
                prepared = prepare_batch(batch, ctx, pool, pending)
                if pending is not None:
                    done = _finish(pending, ctx, done, report, progress)
                pending = prepared
            if pending is not None:
                _finish(pending, ctx, done, report, progress)
    finally:
        if pool is not None:
            pool.close()
    ctx.engine.refresh()
    return report


def _pool(ctx: IndexContext, workers: int) -> ImagePool | None:
    """Worker processes for images, when asked for and the model can be loaded by name."""
    if workers <= 1 or ctx.image_model is None:
        return None
    return ImagePool(ctx.image_model, ctx.image_tensor, workers)


def _finish(
    prepared: PreparedBatch,
    ctx: IndexContext,
    previous: PreparedBatch | None,
    report: IndexReport,
    progress: Callable[[int], None] | None,
) -> PreparedBatch:
    # the vocabulary grows just before its batch is written, exactly as without workers
    encoder = fit_vocabulary(ctx.engine, prepared.records)
    report.batches.add(finish_batch(prepared, ctx, encoder, previous))
    report.products += len(prepared.records)
    if progress:
        progress(len(prepared.records))
    return prepared


def enqueue_catalogue(
    path: Path,
    engine: Engine,
    mapping: CsvMapping | None = None,
    batch_size: int = 64,
) -> tuple[list[str], IndexReport]:
    """Validate the catalogue, store its attribute vocabulary, then enqueue one job per batch.

    The vocabulary is fitted here, by the one process that reads the whole file, so workers
    only read it and never race to extend it.
    """
    from indexer.tasks import index_batch_task

    report = IndexReport()
    fit_vocabulary(engine, (r for b in batches(path, mapping, batch_size, []) for r in b))
    job_ids: list[str] = []
    for batch in batches(path, mapping, batch_size, report.record_errors):
        result = index_batch_task.delay([r.model_dump(mode="json") for r in batch])
        job_ids.append(result.id)
        report.products += len(batch)
    return job_ids, report
