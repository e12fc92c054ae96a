"""Commands that change the catalogue: index, delete, worker, convert, reindex."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lookalike.cli.common import JsonOpt, app, console, emit_json, errors, run
from lookalike.settings import Settings
from lookalike.telemetry import IngestMeter


@app.command()
def index(
    catalogue: Annotated[Path, typer.Argument(help="JSON Lines or CSV catalogue file.")],
    queue: Annotated[bool, typer.Option("--queue", help="Enqueue Celery jobs on Redis.")] = False,
    wait: Annotated[bool, typer.Option(help="With --queue: wait for the jobs and report.")] = False,
    mapping: Annotated[
        list[str] | None, typer.Option("--map", help="CSV: FIELD=COLUMN (repeatable).")
    ] = None,
    attribute_columns: Annotated[
        list[str] | None,
        typer.Option(
            "--attribute",
            help="CSV: a column to keep as an attribute (repeatable); "
            "default: every unmapped column.",
        ),
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Products per batch/job.")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="In-process: image decode/embed processes (default: CPUs)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Index a catalogue: validate, load images, embed, upsert (idempotent)."""
    from indexer.run import enqueue_catalogue, index_catalogue
    from lookalike.records import CsvMapping

    settings = Settings()
    size = batch_size or settings.batch_size
    with errors():
        csv_mapping = CsvMapping.parse(mapping, attribute_columns)
        if queue:
            from indexer.queue import wait_for
            from lookalike.engines import open_engine

            with open_engine(settings) as engine:
                job_ids, report = enqueue_catalogue(catalogue, engine, csv_mapping, size)
            console.print(f"enqueued {report.products} products in {len(job_ids)} jobs")
            if wait:
                from lookalike.cli.progress import progress_bar

                with progress_bar("job") as bar:
                    report.batches = wait_for(job_ids, progress=bar)
        else:
            from indexer.context import build_context
            from lookalike.cli.progress import catalogue_length, progress_bar

            ctx = build_context(settings)
            with progress_bar() as bar:
                bar.stage("indexing", catalogue_length(catalogue))
                report = index_catalogue(
                    catalogue,
                    ctx,
                    csv_mapping,
                    size,
                    bar.advance,
                    workers=workers or settings.ingest_workers,
                )
            ctx.engine.close()
    IngestMeter(settings.redis_url, "cli").add({"records_rejected": len(report.record_errors)})
    for err in report.record_errors:
        console.print(f"[yellow]rejected[/yellow] {escape(str(err))}")
    for image_error in report.batches.image_errors:
        console.print(
            f"[yellow]image error[/yellow] {escape(image_error['id'])} "
            f"{escape(image_error['image'])}: {escape(image_error['error'])}"
        )
    summary = report.to_dict()
    if as_json:
        emit_json(summary)
    else:
        b = report.batches
        console.print(
            f"products: {report.products}, inserted {b.inserted}, updated {b.updated}, "
            f"unchanged {b.unchanged}; images embedded {b.embedded_images}, reused "
            f"{b.reused_images}, failed {len(b.image_errors)}; records rejected "
            f"{len(report.record_errors)}"
        )


@app.command()
def delete(ids: Annotated[list[str], typer.Argument(help="Product ids to delete.")]) -> None:
    """Delete products by id."""
    from lookalike.engines import open_engine

    with errors(), open_engine(Settings()) as engine:
        removed = engine.delete(ids)
        engine.refresh()
    console.print(f"deleted {removed} of {len(ids)}")


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Run a Celery worker that indexes queued batches."""
    from indexer.celery_app import app as celery_app

    if Settings().log_format == "json":
        from lookalike.telemetry import configure_logging

        configure_logging("json")
        celery_app.conf.worker_hijack_root_logger = False
    celery_app.worker_main(
        ["worker", f"--loglevel={loglevel}", f"--concurrency={concurrency}", "-Q", "lookalike"]
    )


@app.command()
def convert(
    dataset: Annotated[str, typer.Argument(help="Dataset kind: fashion-10k.")],
    source: Annotated[Path, typer.Argument(help="The dataset's folder.")],
    output: Annotated[Path, typer.Argument(help="Catalogue file to write (JSON Lines).")],
    limit: Annotated[int | None, typer.Option(help="Only the first N products.")] = None,
) -> None:
    """Convert a public dataset into the catalogue format."""
    from lookalike.datasets import convert_dataset

    count = run(lambda: convert_dataset(dataset, source, output, limit))
    console.print(f"wrote {count} products to {output}")


@app.command()
def reindex(
    model: Annotated[str, typer.Option("--model", help="The new image model (as in settings).")],
    image_tensor: Annotated[
        str | None, typer.Option("--image-tensor", help="TFLite tensor of the new model.")
    ] = None,
    text_model: Annotated[
        str | None, typer.Option("--text-model", help="A new text model (default: unchanged).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Products per batch.")] = None,
    keep_old: Annotated[
        bool, typer.Option("--keep-old", help="OpenSearch: keep the old index after the swap.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Blue/green re-index for a model change: build anew while serving, then switch."""
    from indexer.reindex import reindex as run_reindex
    from lookalike.cli.progress import progress_bar

    with progress_bar() as bar:
        report = run(
            lambda: run_reindex(
                Settings(), model, image_tensor, text_model, batch_size, keep_old, progress=bar
            )
        )
    data = report.to_dict()
    if as_json:
        emit_json(data)
        return
    console.print(
        f"reindexed {data['products']} products with {model} into {data['target']}; "
        f"switched from {', '.join(report.previous) or 'nothing'}"
    )
