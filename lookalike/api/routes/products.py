"""/products: one product, and "more like this"."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from lookalike.api.deps import EngineDep
from lookalike.api.imagelinks import product_out
from lookalike.api.routes.search import AnswerDep
from lookalike.api.schemas import ProductOut, PublicSearchResult
from lookalike.errors import NotFound

router = APIRouter(prefix="/products", tags=["products"])

ProductId = Annotated[str, Path(min_length=1, max_length=512, description="Product id.")]


@router.get("/{product_id}", response_model=ProductOut)
def get_product(product_id: ProductId, engine: EngineDep, request: Request) -> Any:
    """A stored product with its images (and per-image errors) and model tags.

    Each image has a ``url`` to fetch it by; its stored ``uri`` (a local path on the server)
    is shown to write-key holders only.
    """
    product = engine.get([product_id]).get(product_id)
    if product is None:
        raise NotFound(f"unknown product id: {product_id}", ids=[product_id])
    return product_out(product, request)


@router.get("/{product_id}/similar", response_model=PublicSearchResult)
def more_like_this(product_id: ProductId, answer: AnswerDep) -> Any:
    """Products that look like this one (never itself), within the filters.

    ``anchor_ids`` adds more anchors next to this product; the other re-ranking parameters
    work as on ``/search``.
    """
    return answer(like=product_id)
