"""Response models: the JSON shapes the API promises (and the CLI's --json prints).

Search answers (``/search``, ``/search/image``, ``/products/{id}/similar``) are
``reranker.results.SearchResult``, the model the service returns and the CLI prints; the API
sends it as :class:`PublicSearchResult`, each hit with an ``image_url`` and without the
server's local paths (``lookalike/api/imagelinks.py``).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from reranker.results import Hit, SearchResult


def _absent(value: object) -> bool:
    return value is None


class PublicHit(Hit):
    image: str | None = Field(
        None,
        exclude_if=_absent,
        description="The stored image source: an http(s) URL, or a local path (write keys only).",
    )
    image_url: str | None = Field(
        None, description="The image: the catalogue's URL, or /products/{id}/images/{position}."
    )


class PublicSearchResult(SearchResult):
    hits: list[PublicHit]  # type: ignore[assignment]


class ImageOut(BaseModel):
    position: int
    url: str  # the catalogue's URL, or /products/{id}/images/{position} for a local file
    uri: str | None = None  # the stored source; a local path only for write keys
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
