"""`lookalike tune`: learn the catalogue's own similarity from its labels, on stored vectors."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from lookalike.cli.common import JsonOpt, app, console, emit_json, errors
from lookalike.settings import Settings


@app.command()
def tune(
    labels: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            "-l",
            help="A field or attribute to learn from (repeatable; default category and color).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split and the training.")] = 0,
    epochs: Annotated[int, typer.Option("--epochs", help="Passes over the training side.")] = 10,
    linear: Annotated[
        bool,
        typer.Option("--linear", help="A linear head (no ReLU): one affine map per space."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train a head on the stored image and colour vectors from the catalogue's labels and
    serve it as the spaces tuned and tuned_color (no image re-embedded)."""
    from lookalike.cli.progress import Bar
    from lookalike.engines import open_engine
    from lookalike.tuning.train import TuneOptions, tune

    options = TuneOptions(
        labels=tuple(labels or ("category", "color")), seed=seed, epochs=epochs, linear=linear
    )
    with (
        errors(),
        open_engine(Settings()) as engine,
        Bar("epoch", disable=as_json) as bar,
    ):
        report = tune(engine, options, bar)
    if as_json:
        emit_json(report.to_dict())
        return
    table = Table(
        "label",
        "P@10 raw image",
        "P@10 tuned",
        title=f"held-out: {report.test} test products, {report.train} trained on, seed {seed}",
    )
    for label in report.labels:
        table.add_row(label, f"{report.before[label]:.3f}", f"{report.after[label]:.3f}")
    Console().print(table)
    weights = " ".join(f"--weight {k}={v:g}" for k, v in report.weights.items())
    console.print(
        f"served {', '.join(report.tags)} for {report.products} products "
        f"({report.unlabelled} without any label) in {report.seconds:.0f} s; "
        f"query with {weights}"
    )
