"""Merchandiser commands: clusters (and assigning a value to one), the visual map, gap filling."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from lookalike.cli.common import FilterOpt, JsonOpt, app, console, emit_json, errors
from lookalike.cli.progress import progress_bar
from lookalike.filters import parse_filter_args
from lookalike.settings import Settings, split_list

gaps_app = typer.Typer(help="Attribute gap filling from visual neighbours.", no_args_is_help=True)
app.add_typer(gaps_app, name="gaps")

KOpt = Annotated[int, typer.Option("--k", "-k", help="Number of clusters.")]
LimitOpt = Annotated[
    int | None, typer.Option("--limit", help="At most this many products (sorted by id).")
]
FieldOpt = Annotated[
    str, typer.Option("--field", help="brand, category, color or an attribute key.")
]


def _report(data: dict[str, Any], as_json: bool, line: str) -> None:
    """The JSON the API answers with ``--json``, else one line for a person."""
    if as_json:
        emit_json(data)
    else:
        console.print(line)


@app.command()
def clusters(
    k: KOpt = 8,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for clusters.csv/json (+ elbow.png).")
    ] = Path("clusters"),
    k_range: Annotated[
        str | None,
        typer.Option("--k-range", help="LOW:HIGH: also plot the inertia for each k (elbow.png)."),
    ] = None,
    filters: FilterOpt = None,
    limit: LimitOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """k-means over the visual vectors: clusters, representatives, member exports, elbow plot."""
    from lookalike.analysis.clusters import (
        cluster_population,
        clustering_dict,
        export_clusters,
        inertia_curve,
        parse_k_range,
        save_elbow,
    )
    from lookalike.analysis.population import visual_population
    from lookalike.engines import open_engine

    with errors(), open_engine(Settings()) as engine:
        ks = parse_k_range(k_range) if k_range else None
        pop = visual_population(engine, parse_filter_args(filters), limit)
        result = cluster_population(pop, k)
        written = export_clusters(result, engine, out)
        if ks is not None:
            with progress_bar("k") as bar:
                curve = inertia_curve(pop, ks, bar)
            written.append(save_elbow(curve, out / "elbow.png"))
        data = clustering_dict(result, engine)
    if as_json:
        emit_json({**data, "files": [str(p) for p in written]})
        return
    table = Table("cluster", "size", "representative", "title")
    for c in data["clusters"]:
        rep = c["representative"]
        table.add_row(str(c["cluster"]), str(c["size"]), rep["id"], rep["title"] or "")
    Console().print(table)
    console.print(f"inertia {data['inertia']:.3f}; wrote {', '.join(str(p) for p in written)}")


@app.command("clusters-assign")
def clusters_assign(
    field: FieldOpt,
    value: Annotated[str, typer.Option("--value", help="The value every member gets.")],
    cluster: Annotated[
        int | None, typer.Option("--cluster", help="Cluster number (as `clusters` prints it).")
    ] = None,
    k: KOpt = 8,
    ids: Annotated[
        str | None, typer.Option("--ids", help="Comma-separated product ids instead of a cluster.")
    ] = None,
    filters: FilterOpt = None,
    limit: LimitOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set FIELD=VALUE on a cluster's members (same k, filters and limit as `clusters`)."""
    from lookalike.analysis.clusters import assign_cluster, cluster_products, select_members
    from lookalike.engines import open_engine

    with errors(), open_engine(Settings()) as engine:
        members = select_members(
            split_list(ids or ""),
            cluster,
            lambda: cluster_products(engine, k, parse_filter_args(filters), limit),
        )
        updated = assign_cluster(engine, members, field, value)
    data = {"field": field, "value": value, "updated": updated, "ids": members}
    _report(data, as_json, f"{field}={value} set on {updated} products (marked inferred)")


@app.command("map")
def visual_map(
    out: Annotated[Path, typer.Option("--out", help="The PNG to write.")] = Path("map.png"),
    filters: FilterOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many products.")] = 2000,
    grid: Annotated[int, typer.Option("--grid", help="Cells per side of the grid.")] = 20,
    cell: Annotated[int, typer.Option("--cell", help="Thumbnail size in pixels.")] = 64,
    method: Annotated[
        str, typer.Option("--method", help="tsne, or umap (optional extra).")
    ] = "tsne",
    points: Annotated[
        Path | None, typer.Option("--points", help="Also write the map's points as JSON here.")
    ] = None,
) -> None:
    """A 2-D map of the catalogue as a grid of thumbnails (t-SNE of the visual vectors)."""
    from lookalike.analysis.thumbnails import ImageAccess
    from lookalike.analysis.visualmap import map_points, save_map
    from lookalike.engines import open_engine

    settings = Settings()
    with errors(), open_engine(settings) as engine, progress_bar() as bar:
        vmap = save_map(
            engine,
            out,
            access=ImageAccess.from_settings(settings),
            filters=parse_filter_args(filters),
            limit=limit,
            grid=grid,
            cell=cell,
            method=method,
            progress=bar,
        )
        if points is not None:
            points.write_text(json.dumps(map_points(vmap, engine), ensure_ascii=False))
    console.print(f"{len(vmap.ids)} products mapped; wrote {out}")


@gaps_app.command("propose")
def gaps_propose(
    field: FieldOpt,
    min_confidence: Annotated[
        float, typer.Option("--min-confidence", help="Only proposals at least this confident.")
    ] = 0.0,
    limit: Annotated[int, typer.Option("--limit", help="At most this many proposals.")] = 50,
    neighbours: Annotated[int, typer.Option("--neighbours", help="Neighbours that vote.")] = 10,
    filters: FilterOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Values for products missing FIELD, voted by their visual neighbours."""
    from lookalike.analysis.gapfill import propose
    from lookalike.engines import open_engine

    with errors(), open_engine(Settings()) as engine, progress_bar() as bar:
        found = propose(
            engine,
            field,
            k=neighbours,
            min_confidence=min_confidence,
            limit=limit,
            filters=parse_filter_args(filters),
            progress=bar,
        )
    data = {"field": field, "proposals": [p.to_dict() for p in found]}
    if as_json:
        emit_json(data)
        return
    table = Table("id", "value", "confidence", "neighbours")
    for p in found:
        near = ", ".join(f"{n.id}:{n.value}" for n in p.neighbours[:3])
        table.add_row(p.id, p.value, f"{p.confidence:.2f}", near)
    Console().print(table)


ProductArg = Annotated[str, typer.Argument(help="The product id.")]
FieldArg = Annotated[str, typer.Argument(help="brand, category, color or an attribute key.")]


def _decide(
    decision: Callable[[Any, str, str, str], dict[str, Any]],
    product_id: str,
    field: str,
    value: str,
    as_json: bool,
    said: Callable[[dict[str, Any]], str],
) -> None:
    """Run one gap decision (the library function the API's /gaps/accept|reject run too)."""
    from lookalike.engines import open_engine

    with errors(), open_engine(Settings()) as engine:
        data = decision(engine, product_id, field, value)
    _report(data, as_json, f"{product_id}: {field}={value} {said(data)}")


@gaps_app.command("accept")
def gaps_accept(
    product_id: ProductArg,
    field: FieldArg,
    value: Annotated[str, typer.Argument(help="The value to write back.")],
    as_json: JsonOpt = False,
) -> None:
    """Write VALUE into the product's FIELD, marked inferred, with its provenance."""
    from lookalike.analysis.gapfill import accept

    _decide(
        accept, product_id, field, value, as_json, lambda d: f"(confidence {d['confidence']:.2f})"
    )


@gaps_app.command("reject")
def gaps_reject(
    product_id: ProductArg,
    field: FieldArg,
    value: Annotated[str, typer.Argument(help="The proposed value that is wrong.")],
    as_json: JsonOpt = False,
) -> None:
    """Never propose VALUE for this product's FIELD again; the product is unchanged."""
    from lookalike.analysis.gapfill import reject

    _decide(reject, product_id, field, value, as_json, lambda d: "rejected")
