"""Operating commands: pca, serve, stats, eval."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from lookalike.cli.common import JsonOpt, app, console, emit_json, errors
from lookalike.cli.progress import progress_bar
from lookalike.settings import Settings


@app.command(name="pca")
def pca_fit(
    dim: Annotated[int | None, typer.Option("--dim", help="Dimensions to keep.")] = None,
    space: Annotated[str, typer.Option("--space", help="Vector space to fit.")] = "image",
    sample: Annotated[int, typer.Option("--sample", help="Products to fit on.")] = 50_000,
    drop: Annotated[
        bool, typer.Option("--drop", help="Serve the space's full vectors again.")
    ] = False,
) -> None:
    """Fit a PCA on the catalogue's vectors and serve the space reduced (or --drop it)."""
    from lookalike.engines import open_engine
    from lookalike.pca import fit_engine

    if (dim is None) == (not drop):
        raise typer.BadParameter("give --dim to fit a PCA, or --drop to remove one")
    with errors(), open_engine(Settings()) as engine:
        if drop:
            dropped = engine.drop_projection(space)
            console.print(f"{space}: " + ("PCA dropped" if dropped else "no PCA was served"))
            return
        assert dim is not None
        fitted = fit_engine(engine, space, dim, sample)
    console.print(
        f"stored PCA {fitted.tag}: {dim} dimensions keep {fitted.explained:.1%} of the variance"
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Start the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from lookalike.api.app import create_app
    from lookalike.telemetry import configure_logging

    settings = Settings()
    configure_logging(settings.log_format)
    # The app writes the access log itself (with request ids); uvicorn's would repeat it.
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
    )


@app.command()
def stats(as_json: JsonOpt = False) -> None:
    """How many products the engine holds."""
    from lookalike.engines import open_engine

    with errors(), open_engine(Settings()) as engine:
        data = {"products": engine.count()}
    if as_json:
        emit_json(data)
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
    holdout: Annotated[
        bool,
        typer.Option(
            "--holdout",
            help="Judge the images alone on a seeded 80/20 split by id: the test products "
            "are queries and candidates, text and attributes off, each --label on its own "
            "(default category and color).",
        ),
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --holdout split.")] = 0,
    test_only: Annotated[
        bool,
        typer.Option("--test-only", help="With --holdout: only test products as candidates."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate "more like this": precision@k, recall@k, nDCG@k and MRR, per label value."""
    from lookalike.engines import open_engine
    from reranker import parse_weights
    from reranker.evaluation import evaluate

    if holdout:
        _holdout(
            labels or ["category", "color"],
            k,
            limit,
            parse_weights(weights or []),
            seed,
            test_only,
            as_json,
        )
        return
    with errors(), open_engine(Settings()) as engine, progress_bar("query") as bar:
        report = evaluate(
            engine,
            labels or ([] if golden else ["category"]),
            k,
            golden,
            limit,
            parse_weights(weights or []),
            progress=bar,
        )
    if as_json:
        emit_json(report.to_dict())
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


def _holdout(
    labels: list[str],
    k: int,
    limit: int | None,
    weights: dict[str, float],
    seed: int,
    test_only: bool,
    as_json: bool,
) -> None:
    from lookalike.engines import open_engine
    from reranker.evaluation import evaluate_holdout

    with errors(), open_engine(Settings()) as engine, progress_bar("query") as bar:
        report = evaluate_holdout(
            engine, labels, k, seed, weights, limit, test_only=test_only, progress=bar
        )
    if as_json:
        emit_json(report.to_dict())
        return
    table = Table(
        "label",
        "queries",
        f"P@{k}",
        f"nDCG@{k}",
        title=f"held-out more like this ({report.test} test queries, {report.train} train, "
        f"seed {seed}{', test candidates only' if test_only else ''})",
    )
    for name, m in report.labels.items():
        table.add_row(name, str(m.queries), f"{m.precision:.3f}", f"{m.ndcg:.3f}")
    Console().print(table)
    shown = ", ".join(f"{n}={w:g}" for n, w in sorted(report.weights.items()))
    console.print(f"weights over the defaults: {shown}; p50 {report.p50_ms:.1f} ms")
