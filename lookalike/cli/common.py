"""What every command shares: the Typer app, common options and error handling."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lookalike.errors import CALLER_ERRORS, LookalikeError

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
def errors() -> Iterator[None]:
    """Lookalike errors become one clear line and a non-zero exit, not a traceback."""
    try:
        yield
    except LookalikeError as exc:
        # escaped: a message is text, not markup ("lookalike[litert]" is not a style tag)
        console.print(f"[red]error[/red] ({exc.code}): {escape(exc.message)}")
        raise typer.Exit(2 if isinstance(exc, CALLER_ERRORS) else 1) from None


def run(fn: Callable[[], T]) -> T:
    with errors():
        return fn()


def emit_json(data: Any) -> None:
    """One JSON line on stdout (UTF-8, as the API sends it): what every ``--json`` prints."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


def print_result(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(data)
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
