"""Response models: the JSON shapes the API promises (and the CLI's --json prints)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class HitOut(BaseModel):
    id: str
    score: float
    title: str
    brand: str | None = None
    category: str | None = None
    color: str | None = None
    price: float | None = None
    # the stored source: a local path only for write keys (see lookalike/api/imagelinks.py)
    image: str | None = None
    image_url: str | None = None  # what to fetch: the catalogue's URL or /products/{id}/images/N
    explanation: dict[str, Any] | None = None  # only with explain=true


class SessionAnchorOut(BaseModel):
    id: str
    weight: float
    events: list[dict[str, Any]]  # the events that made this anchor: type, product_id, at


class SessionUsedOut(BaseModel):
    """Which of a shopper's events became which anchors (only with ``session_id``)."""

    id: str
    anchors: list[SessionAnchorOut]
    negatives: list[SessionAnchorOut]
    excluded: list[str]


class SearchOut(BaseModel):
    hits: list[HitOut]
    total: int
    anchors: list[str]
    session: SessionUsedOut | None = None


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
