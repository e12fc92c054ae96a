"""The ``lookalike`` command line: a thin layer over indexer, reranker and the engine."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from lookalike.errors import LookalikeError
from lookalike.filters import parse_filter_args
from lookalike.settings import Settings

app = typer.Typer(
    help="Lookalike: visual product-similarity search.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)
T = TypeVar("T")

FilterOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        "-f",
        help="FIELD=VALUE, FIELD=V1,V2, FIELD!=VALUE or price>=N / price<=N; repeat to AND.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the JSON answer the API gives.")]


@contextmanager
def _errors() -> Iterator[None]:
    """Lookalike errors become one clear line and a non-zero exit, not a traceback."""
    try:
        yield
    except LookalikeError as exc:
        console.print(f"[red]error[/red] ({exc.code}): {exc.message}")
        raise typer.Exit(2 if exc.status < 500 else 1) from None


def _run(fn: Callable[[], T]) -> T:
    with _errors():
        return fn()


def _print_result(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        return
    table = Table("rank", "id", "score", "title", "category", "color")
    for rank, hit in enumerate(data["hits"], start=1):
        table.add_row(
            str(rank),
            hit["id"],
            f"{hit['score']:.4f}",
            hit["title"] or "",
            hit.get("category") or "",
            hit.get("color") or "",
        )
    Console().print(table)


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
    as_json: JsonOpt = False,
) -> None:
    """Index a catalogue: validate, load images, embed, upsert (idempotent)."""
    from indexer.run import enqueue_catalogue, index_catalogue
    from lookalike.records import CsvMapping

    settings = Settings()
    size = batch_size or settings.batch_size
    with _errors():
        csv_mapping = CsvMapping.parse(mapping, attribute_columns)
        if queue:
            from indexer.queue import wait_for
            from lookalike.engines import open_engine

            with open_engine(settings) as engine:
                job_ids, report = enqueue_catalogue(catalogue, engine, csv_mapping, size)
            console.print(f"enqueued {report.products} products in {len(job_ids)} jobs")
            if wait:
                report.batches = wait_for(job_ids)
        else:
            from tqdm import tqdm

            from indexer.context import build_context

            ctx = build_context(settings)
            with tqdm(unit="product", desc="indexing", file=sys.stderr) as bar:
                report = index_catalogue(catalogue, ctx, csv_mapping, size, bar.update)
            ctx.engine.close()
    for err in report.record_errors:
        console.print(f"[yellow]rejected[/yellow] {err}")
    for image_error in report.batches.image_errors:
        console.print(
            f"[yellow]image error[/yellow] {image_error['id']} {image_error['image']}: "
            f"{image_error['error']}"
        )
    summary = report.to_dict()
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        b = report.batches
        console.print(
            f"products: {report.products}, inserted {b.inserted}, updated {b.updated}, "
            f"unchanged {b.unchanged}; images embedded {b.embedded_images}, reused "
            f"{b.reused_images}, failed {len(b.image_errors)}; records rejected "
            f"{len(report.record_errors)}"
        )


AnchorOpt = Annotated[
    list[str] | None,
    typer.Option("--anchor", "-a", help="Anchor product ID[:WEIGHT] (repeatable, or a,b:2)."),
]
NegativeOpt = Annotated[
    list[str] | None,
    typer.Option("--negative", help="Product ID[:WEIGHT] to look unlike (repeatable)."),
]
WeightOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--weight",
        "-w",
        help="SIGNAL=W for visual, text, attributes, keyword, negative (repeatable).",
    ),
]
AggregationOpt = Annotated[
    str, typer.Option("--aggregation", help="How anchors combine: average, max, sum, min.")
]
KeywordNormOpt = Annotated[
    str, typer.Option("--keyword-norm", help="BM25 normalisation: minmax or rank.")
]
WindowOpt = Annotated[
    int | None, typer.Option("--window", help="Candidates re-scored (default: settings).")
]
OffsetOpt = Annotated[int, typer.Option("--offset", help="Results to skip (paging).")]
ExplainOpt = Annotated[
    bool, typer.Option("--explain", help="Show each signal's and anchor's contribution.")
]


def _rerank(
    settings: Settings,
    *,
    query: str,
    anchors: list[str],
    negatives: list[str] | None,
    filters: list[str] | None,
    weights: list[str] | None,
    aggregation: str,
    keyword_norm: str,
    window: int | None,
    k: int,
    offset: int,
    explain: bool,
) -> dict[str, Any]:
    """Build the shared request model and run it, as the API does."""
    from lookalike.engines import open_engine
    from reranker import RerankRequest, parse_weighted_ids, parse_weights, run

    with _errors():
        req = RerankRequest(
            query=query,
            anchors=parse_weighted_ids(anchors),
            negatives=parse_weighted_ids(negatives or []),
            filters=parse_filter_args(filters),
            weights=parse_weights(weights or []),
            aggregation=aggregation,
            keyword_norm=keyword_norm,
            window=window or settings.candidates,
            k=k,
            offset=offset,
            explain=explain,
            max_k=settings.max_k,
        )
        with open_engine(settings) as engine:
            return run(engine, req).to_dict()


def _print_explanations(data: dict[str, Any]) -> None:
    for hit in data["hits"]:
        expl = hit.get("explanation")
        if not expl:
            continue
        parts = [f"{k}={v['contribution']:+.4f}" for k, v in expl["signals"].items()]
        per_anchor = [
            f"{a}:" + ",".join(f"{s}={c:+.4f}" for s, c in by_signal.items())
            for group in ("anchors", "negatives")
            for a, by_signal in expl[group].items()
        ]
        console.print(f"{hit['id']}: {' '.join(parts)} | {' '.join(per_anchor)}")


@app.command()
def similar(
    product_id: Annotated[str, typer.Argument(help="The anchor product id.")],
    k: Annotated[int, typer.Option("--k", "-k", help="How many results.")] = 10,
    filters: FilterOpt = None,
    anchors: AnchorOpt = None,
    negatives: NegativeOpt = None,
    weights: WeightOpt = None,
    aggregation: AggregationOpt = "average",
    keyword_norm: KeywordNormOpt = "minmax",
    window: WindowOpt = None,
    offset: OffsetOpt = 0,
    explain: ExplainOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """More like this: products that look like PRODUCT_ID (plus any extra --anchor)."""
    data = _rerank(
        Settings(),
        query="",
        anchors=[product_id, *(anchors or [])],
        negatives=negatives,
        filters=filters,
        weights=weights,
        aggregation=aggregation,
        keyword_norm=keyword_norm,
        window=window,
        k=k,
        offset=offset,
        explain=explain,
    )
    _print_result(data, as_json)
    if explain and not as_json:
        _print_explanations(data)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Keywords (may be empty with --anchor).")] = "",
    anchors: AnchorOpt = None,
    k: Annotated[int, typer.Option("--k", "-k", help="How many results.")] = 10,
    filters: FilterOpt = None,
    negatives: NegativeOpt = None,
    weights: WeightOpt = None,
    aggregation: AggregationOpt = "average",
    keyword_norm: KeywordNormOpt = "minmax",
    window: WindowOpt = None,
    offset: OffsetOpt = 0,
    explain: ExplainOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Keyword search within filters, re-scored against the anchors."""
    data = _rerank(
        Settings(),
        query=query,
        anchors=anchors or [],
        negatives=negatives,
        filters=filters,
        weights=weights,
        aggregation=aggregation,
        keyword_norm=keyword_norm,
        window=window,
        k=k,
        offset=offset,
        explain=explain,
    )
    _print_result(data, as_json)
    if explain and not as_json:
        _print_explanations(data)


@app.command(name="pca")
def pca_fit(
    dim: Annotated[int, typer.Option("--dim", help="Dimensions to keep.")],
    space: Annotated[str, typer.Option("--space", help="Vector space to fit.")] = "image",
    sample: Annotated[int, typer.Option("--sample", help="Products to fit on.")] = 50_000,
) -> None:
    """Fit a PCA on the catalogue's vectors and store it with the model (smaller vectors)."""
    from lookalike.engines import open_engine
    from lookalike.pca import fit_engine

    with _errors(), open_engine(Settings()) as engine:
        fitted = fit_engine(engine, space, dim, sample)
    console.print(
        f"stored PCA {fitted.tag}: {dim} dimensions keep {fitted.explained:.1%} of the variance"
    )


@app.command()
def delete(ids: Annotated[list[str], typer.Argument(help="Product ids to delete.")]) -> None:
    """Delete products by id."""
    from lookalike.engines import open_engine

    with _errors(), open_engine(Settings()) as engine:
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

    celery_app.worker_main(
        ["worker", f"--loglevel={loglevel}", f"--concurrency={concurrency}", "-Q", "lookalike"]
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Start the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from lookalike.api.app import create_app

    settings = Settings()
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port)


@app.command()
def convert(
    dataset: Annotated[str, typer.Argument(help="Dataset kind: fashion-10k.")],
    source: Annotated[Path, typer.Argument(help="The dataset's folder.")],
    output: Annotated[Path, typer.Argument(help="Catalogue file to write (JSON Lines).")],
    limit: Annotated[int | None, typer.Option(help="Only the first N products.")] = None,
) -> None:
    """Convert a public dataset into the catalogue format."""
    from lookalike.datasets import convert_dataset

    count = _run(lambda: convert_dataset(dataset, source, output, limit))
    console.print(f"wrote {count} products to {output}")


@app.command()
def stats(as_json: JsonOpt = False) -> None:
    """How many products the engine holds."""
    from lookalike.engines import open_engine

    with _errors(), open_engine(Settings()) as engine:
        data = {"products": engine.count()}
    if as_json:
        sys.stdout.write(json.dumps(data) + "\n")
    else:
        console.print(f"products: {data['products']}")


@app.command(name="eval")
def evaluate_command(
    labels: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            "-l",
            help="Relevance label: a field or attribute (repeatable; "
            "the first must match, each further match raises the grade).",
        ),
    ] = None,
    golden: Annotated[
        Path | None,
        typer.Option(help='Golden set: JSON Lines {"anchor": ID, "relevant": {ID: GRADE}}.'),
    ] = None,
    k: Annotated[int, typer.Option("--k", "-k", help="Cut-off rank.")] = 10,
    limit: Annotated[int | None, typer.Option(help="Evaluate only the first N anchors.")] = None,
    weights: Annotated[
        list[str] | None,
        typer.Option(
            "--weight",
            "-w",
            help="SIGNAL=WEIGHT overriding a default (repeatable), "
            "e.g. text=0 to judge the image model alone.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate "more like this": precision@k, recall@k, nDCG@k and MRR, per label value."""
    from lookalike.engines import open_engine
    from lookalike.evaluation import evaluate
    from reranker import parse_weights

    with _errors(), open_engine(Settings()) as engine:
        report = evaluate(
            engine,
            labels or ([] if golden else ["category"]),
            k,
            golden,
            limit,
            parse_weights(weights or []),
        )
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict()) + "\n")
        return
    table = Table(
        "value",
        "queries",
        f"P@{k}",
        f"R@{k}",
        f"nDCG@{k}",
        "MRR",
        title=f"more like this, judged by {report.judged_by}",
    )
    rows = [("(overall)", report.overall)] + sorted(
        report.per_value.items(), key=lambda kv: -kv[1].queries
    )
    for name, m in rows:
        table.add_row(
            name,
            str(m.queries),
            f"{m.precision:.3f}",
            f"{m.recall:.3f}",
            f"{m.ndcg:.3f}",
            f"{m.mrr:.3f}",
        )
    Console().print(table)
    console.print(f"latency p50 {report.p50_ms:.2f} ms, p95 {report.p95_ms:.2f} ms")


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

    report = _run(
        lambda: run_reindex(Settings(), model, image_tensor, text_model, batch_size, keep_old)
    )
    data = report.to_dict()
    if as_json:
        sys.stdout.write(json.dumps(data) + "\n")
        return
    console.print(
        f"reindexed {data['products']} products with {model} into {data['target']}; "
        f"switched from {', '.join(report.previous) or 'nothing'}"
    )


if __name__ == "__main__":
    app()
