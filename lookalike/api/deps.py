"""Injected dependencies: settings, the engine, filters and re-ranking parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from lookalike.api.state import Serving, current
from lookalike.engines import Engine
from lookalike.filters import And as AndFilter
from lookalike.filters import Filter, Range, Terms, parse_filter_arg
from lookalike.settings import Settings
from reranker.params import RerankParams

ServingDep = Annotated[Serving, Depends(current)]


def get_app_settings(now: ServingDep) -> Settings:
    return now.settings


def get_engine(now: ServingDep) -> Engine:
    return now.engine


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def get_filters(
    brand: Annotated[str | None, Query(description="Brand(s), comma-separated.")] = None,
    category: Annotated[str | None, Query(description="Category(ies), comma-separated.")] = None,
    color: Annotated[str | None, Query(description="Colour(s), comma-separated.")] = None,
    price_min: Annotated[float | None, Query(ge=0, description="Lowest price.")] = None,
    price_max: Annotated[float | None, Query(ge=0, description="Highest price.")] = None,
    filter: Annotated[
        list[str] | None,
        Query(description="More filters as FIELD=VALUE, FIELD!=VALUE, price>=N (repeatable)."),
    ] = None,
) -> Filter | None:
    """All filter parameters ANDed together; None when there are none."""
    nodes: list[Filter] = []
    for field, value in (("brand", brand), ("category", category), ("color", color)):
        values = _split(value)
        if values:
            nodes.append(Terms(field, values))
    if price_min is not None or price_max is not None:
        nodes.append(Range("price", gte=price_min, lte=price_max))
    nodes.extend(parse_filter_arg(f) for f in filter or [])
    if not nodes:
        return None
    return nodes[0] if len(nodes) == 1 else AndFilter(tuple(nodes))


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
FiltersDep = Annotated[Filter | None, Depends(get_filters)]
# The re-ranking parameters as query parameters: the fields of the one request model.
RerankDep = Annotated[RerankParams, Query()]
