"""/products: one product, and "more like this"."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from lookalike.api.deps import EngineDep, FiltersDep, SettingsDep
from lookalike.api.schemas import ProductOut, SearchOut
from lookalike.errors import InvalidInput, NotFound
from reranker import similar

router = APIRouter(prefix="/products", tags=["products"])

ProductId = Annotated[str, Path(min_length=1, max_length=512, description="Product id.")]


@router.get("/{product_id}", response_model=ProductOut)
def get_product(product_id: ProductId, engine: EngineDep) -> Any:
    """A stored product with its images (and per-image errors) and model tags."""
    product = engine.get([product_id]).get(product_id)
    if product is None:
        raise NotFound(f"unknown product id: {product_id}", ids=[product_id])
    return product


@router.get("/{product_id}/similar", response_model=SearchOut)
def more_like_this(
    product_id: ProductId,
    engine: EngineDep,
    settings: SettingsDep,
    filters: FiltersDep,
    k: Annotated[int | None, Query(ge=1, description="How many results.")] = None,
) -> Any:
    """Products that look like this one (never itself), within the filters."""
    k = k or settings.default_k
    if k > settings.max_k:
        raise InvalidInput(f"k must be at most {settings.max_k}", k=k)
    return similar(engine, product_id, k, filters).to_dict()
