"""Response models: the JSON shapes the API promises (and the CLI's --json prints).

Search answers (``/search``, ``/search/image``, ``/products/{id}/similar``) are
``reranker.results.SearchResult``, the model the service returns and the CLI prints.
"""

from __future__ import annotations

from pydantic import BaseModel


class ImageOut(BaseModel):
    position: int
    uri: str
    hash: str | None = None
    error: str | None = None


class ProductOut(BaseModel):
    id: str
    title: str
    description: str
    brand: str | None = None
    category: str | None = None
    color: str | None = None
    price: float | None = None
    attributes: dict[str, list[str]]
    images: list[ImageOut]
    models: dict[str, str]
    revision: int


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, object] = {}


class ErrorOut(BaseModel):
    error: ErrorDetail
