"""Commands that ask: similar (more like this) and search (keywords re-ranked)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from lookalike.cli.common import FilterOpt, JsonOpt, app, console, errors, print_result
from lookalike.filters import parse_filter_args
from lookalike.settings import Settings

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
        help="SIGNAL=W for visual, color, text, attributes, keyword, negative (repeatable).",
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
SetMethodOpt = Annotated[
    str,
    typer.Option(
        "--set-method", help="Products compared as image sets: mean, max, greedy, assignment."
    ),
]
SetThresholdOpt = Annotated[
    float | None,
    typer.Option("--set-threshold", help="Image pairs under this cosine do not count."),
]
SetMOpt = Annotated[int | None, typer.Option("--set-m", help="Only the best M image pairs count.")]


KOpt = Annotated[int, typer.Option("--k", "-k", help="How many results.")]

# The options `similar` and `search` share, as (annotation, default): they build one
# RerankParams, the model the API's query parameters build too.
RERANK_OPTIONS: dict[str, tuple[Any, Any]] = {
    "k": (KOpt, 10),
    "filters": (FilterOpt, None),
    "anchors": (AnchorOpt, None),
    "negatives": (NegativeOpt, None),
    "weights": (WeightOpt, None),
    "aggregation": (AggregationOpt, "average"),
    "keyword_norm": (KeywordNormOpt, "minmax"),
    "window": (WindowOpt, None),
    "offset": (OffsetOpt, 0),
    "explain": (ExplainOpt, False),
    "set_method": (SetMethodOpt, "mean"),
    "set_threshold": (SetThresholdOpt, None),
    "set_m": (SetMOpt, None),
    "as_json": (JsonOpt, False),
}


def rerank_command(fn: Callable[..., dict[str, Any]]) -> Callable[..., None]:
    """A query command: ``fn`` takes its own arguments and says what it adds to the request
    (``query`` or ``like``); the shared options are added to its signature, built into one
    :class:`RerankParams`, run as the API runs them, and printed."""
    own = list(inspect.signature(fn, eval_str=True).parameters.values())
    shared = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann)
        for name, (ann, default) in RERANK_OPTIONS.items()
    ]

    @functools.wraps(fn)
    def command(**values: Any) -> None:
        from lookalike.engines import open_engine
        from reranker import parse_weights, run
        from reranker.params import RerankParams

        options = {name: values.pop(name) for name in RERANK_OPTIONS}
        as_json, filters = options.pop("as_json"), options.pop("filters")
        settings = Settings()
        with errors():
            params = RerankParams.build(
                anchors=options.pop("anchors"),
                negatives=options.pop("negatives"),
                weights=parse_weights(options.pop("weights") or []),
                **options,
            )
            req = params.request(settings, filters=parse_filter_args(filters), **fn(**values))
            with open_engine(settings) as engine:
                data = run(engine, req).to_dict()
        print_result(data, as_json)
        if params.explain and not as_json:
            _print_explanations(data)

    command.__signature__ = inspect.Signature(own + shared)  # type: ignore[attr-defined]
    return command


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
        for anchor, entry in (expl.get("image_sets") or {}).items():
            pairs = " ".join(
                f"{p['anchor_position']}~{p['candidate_position']}={p['score']:.3f}"
                for p in entry["pairs"]
            )
            console.print(
                f"  {anchor}: {entry['method']} {entry['score']:.4f}"
                f" coverage {entry['coverage']:.2f} | {pairs}"
            )


@app.command()
@rerank_command
def similar(
    product_id: Annotated[str, typer.Argument(help="The anchor product id.")],
) -> dict[str, Any]:
    """More like this: products that look like PRODUCT_ID (plus any extra --anchor)."""
    return {"like": product_id}


@app.command()
@rerank_command
def search(
    query: Annotated[str, typer.Argument(help="Keywords (may be empty with --anchor).")] = "",
) -> dict[str, Any]:
    """Keyword search within filters, re-scored against the anchors."""
    return {"query": query}
