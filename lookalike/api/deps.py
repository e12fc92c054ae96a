"""Injected dependencies: settings, the engine, and filters parsed from query parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from lookalike.api.state import Serving, current
from lookalike.engines import Engine
from lookalike.filters import And as AndFilter
from lookalike.filters import Filter, Range, Terms, parse_filter_arg
from lookalike.settings import Settings
from reranker.imagesets import METHODS, SetOptions
from reranker.request import RerankRequest, parse_weighted_ids
from reranker.scoring import AGGREGATIONS, KEYWORD_NORMS

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


Weight = Annotated[float | None, Query(ge=0, le=1000)]


class RerankParams:
    """The re-ranking query parameters /search and /products/{id}/similar share."""

    def __init__(
        self,
        anchor_ids: Annotated[
            str,
            Query(max_length=10_000, description="Anchor ids, comma-separated, ID[:WEIGHT]."),
        ] = "",
        negative_ids: Annotated[
            str,
            Query(
                max_length=10_000, description="Ids to look unlike, comma-separated, ID[:WEIGHT]."
            ),
        ] = "",
        w_visual: Annotated[Weight, Query(description="Weight of image similarity.")] = None,
        w_text: Annotated[Weight, Query(description="Weight of text-embedding similarity.")] = None,
        w_attributes: Annotated[Weight, Query(description="Weight of attribute overlap.")] = None,
        w_keyword: Annotated[Weight, Query(description="Weight of the normalised BM25.")] = None,
        w_negative: Annotated[Weight, Query(description="Strength of the negatives.")] = None,
        aggregation: Annotated[
            str, Query(description=f"Anchor aggregation: {', '.join(AGGREGATIONS)}.")
        ] = "average",
        keyword_norm: Annotated[
            str, Query(description=f"BM25 normalisation: {', '.join(KEYWORD_NORMS)}.")
        ] = "minmax",
        window: Annotated[
            int | None, Query(ge=1, le=10_000, description="Candidates re-scored.")
        ] = None,
        explain: Annotated[
            bool, Query(description="Per-hit signal and anchor contributions.")
        ] = False,
        k: Annotated[int | None, Query(ge=1, description="How many results.")] = None,
        offset: Annotated[int, Query(ge=0, le=10_000, description="Results to skip.")] = 0,
        set_method: Annotated[
            str, Query(description=f"Products compared as image sets: {', '.join(METHODS)}.")
        ] = "mean",
        set_threshold: Annotated[
            float | None, Query(ge=-1, le=1, description="Image pairs under it do not count.")
        ] = None,
        set_m: Annotated[
            int | None, Query(ge=1, le=64, description="Only the best m image pairs count.")
        ] = None,
    ) -> None:
        self.anchors = parse_weighted_ids([anchor_ids])
        self.negatives = parse_weighted_ids([negative_ids])
        raw = {
            "visual": w_visual,
            "text": w_text,
            "attributes": w_attributes,
            "keyword": w_keyword,
            "negative": w_negative,
        }
        self.weights = {name: value for name, value in raw.items() if value is not None}
        self.aggregation, self.keyword_norm = aggregation, keyword_norm
        self.window, self.explain, self.k, self.offset = window, explain, k, offset
        self.image_set = (set_method, set_threshold, set_m)

    def request(self, settings: Settings, **overrides: object) -> RerankRequest:
        """The validated request (limits from the settings)."""
        values: dict[str, object] = {
            "anchors": self.anchors,
            "negatives": self.negatives,
            "weights": self.weights,
            "aggregation": self.aggregation,
            "keyword_norm": self.keyword_norm,
            "window": self.window or settings.candidates,
            "k": self.k or settings.default_k,
            "offset": self.offset,
            "explain": self.explain,
            "max_k": settings.max_k,
            "image_set": SetOptions(*self.image_set),
        }
        values.update(overrides)
        return RerankRequest(**values)  # type: ignore[arg-type]


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
FiltersDep = Annotated[Filter | None, Depends(get_filters)]
RerankDep = Annotated[RerankParams, Depends(RerankParams)]
