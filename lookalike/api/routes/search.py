"""/search: keyword and filter search, re-sorted by similarity to anchors."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from lookalike.api.deps import EngineDep, FiltersDep, SettingsDep
from lookalike.api.schemas import SearchOut
from lookalike.errors import InvalidInput
from reranker import search

router = APIRouter(tags=["search"])

MAX_ANCHORS = 20
MAX_QUERY_CHARS = 512


@router.get("/search", response_model=SearchOut)
def search_products(
    engine: EngineDep,
    settings: SettingsDep,
    filters: FiltersDep,
    q: Annotated[str, Query(max_length=MAX_QUERY_CHARS, description="Keywords.")] = "",
    anchor_ids: Annotated[
        str, Query(max_length=10_000, description="Anchor product ids, comma-separated.")
    ] = "",
    k: Annotated[int | None, Query(ge=1, description="How many results.")] = None,
    offset: Annotated[int, Query(ge=0, le=10_000, description="Results to skip.")] = 0,
) -> Any:
    """BM25 over the catalogue within the filters; with anchors, re-sorted by similarity.

    With anchors and no keywords, the filtered set is sorted by similarity.
    """
    anchors = [a.strip() for a in anchor_ids.split(",") if a.strip()]
    k = k or settings.default_k
    if k > settings.max_k:
        raise InvalidInput(f"k must be at most {settings.max_k}", k=k)
    if len(anchors) > MAX_ANCHORS:
        raise InvalidInput(f"at most {MAX_ANCHORS} anchors", anchors=len(anchors))
    result = search(engine, q, anchors, filters, k, offset, candidates=settings.candidates)
    return result.to_dict()
