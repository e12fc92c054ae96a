"""/products: one product, and "more like this"."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from lookalike.api.deps import EngineDep
from lookalike.api.routes.search import AnswerDep
from lookalike.api.schemas import ProductOut
from lookalike.errors import NotFound
from reranker.results import SearchResult

router = APIRouter(prefix="/products", tags=["products"])

ProductId = Annotated[str, Path(min_length=1, max_length=512, description="Product id.")]


@router.get("/{product_id}", response_model=ProductOut)
def get_product(product_id: ProductId, engine: EngineDep) -> Any:
    """A stored product with its images (and per-image errors) and model tags."""
    product = engine.get([product_id]).get(product_id)
    if product is None:
        raise NotFound(f"unknown product id: {product_id}", ids=[product_id])
    return product


@router.get("/{product_id}/similar", response_model=SearchResult)
def more_like_this(product_id: ProductId, answer: AnswerDep) -> Any:
    """Products that look like this one (never itself), within the filters.

    ``anchor_ids`` adds more anchors next to this product; the other re-ranking parameters
    work as on ``/search``.
    """
    return answer(like=product_id)
