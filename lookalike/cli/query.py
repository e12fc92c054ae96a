"""Commands that ask: similar (more like this) and search (keywords re-ranked)."""

from __future__ import annotations

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
    image_set: tuple[str, float | None, int | None] = ("mean", None, None),
) -> dict[str, Any]:
    """Build the shared request model and run it, as the API does."""
    from lookalike.engines import open_engine
    from reranker import RerankRequest, parse_weighted_ids, parse_weights, run
    from reranker.imagesets import SetOptions

    with errors():
        req = RerankRequest(
            query=query,
            anchors=parse_weighted_ids(anchors),
            negatives=parse_weighted_ids(negatives or []),
            filters=parse_filter_args(filters),
            weights={"color": settings.w_color, **parse_weights(weights or [])},
            aggregation=aggregation,
            keyword_norm=keyword_norm,
            window=window or settings.candidates,
            k=k,
            offset=offset,
            explain=explain,
            max_k=settings.max_k,
            image_set=SetOptions(*image_set),
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
    set_method: SetMethodOpt = "mean",
    set_threshold: SetThresholdOpt = None,
    set_m: SetMOpt = None,
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
        image_set=(set_method, set_threshold, set_m),
    )
    print_result(data, as_json)
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
    set_method: SetMethodOpt = "mean",
    set_threshold: SetThresholdOpt = None,
    set_m: SetMOpt = None,
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
        image_set=(set_method, set_threshold, set_m),
    )
    print_result(data, as_json)
    if explain and not as_json:
        _print_explanations(data)
