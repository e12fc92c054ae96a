"""Image links for API answers: readers get URLs, never the server's file system.

A product's image is stored as where it was read from: a local path on the server, or the
catalogue's http(s) URL. Every answer gives ``image_url`` instead, which anyone can fetch:
the catalogue's own URL for a remote image, the API's image route
(``/products/{id}/images/{position}``) for a local file. The local path itself (``image`` on
hits, ``uri`` on a product's images) is only shown to callers holding a write key, the
operators who put it there; per-image errors are told without it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from fastapi import Request

from lookalike.api.schemas import PublicHit, PublicSearchResult
from lookalike.api.security import holds_write_key
from lookalike.documents import ImageEntry, Product
from lookalike.engines import Engine
from lookalike.records import is_http_url
from reranker.results import SearchResult

_PATHISH = re.compile(r"(?:(?<=[\s'\"(=:])|^)/[^\s'\"()]+")


def image_route(product_id: str, position: int) -> str:
    """The API's own route to a product's image (the web page adds ``?size=`` for thumbnails)."""
    return f"/products/{quote(product_id, safe='')}/images/{position}"


def image_url(product_id: str, uri: str, position: int) -> str:
    """What a reader fetches: the catalogue's URL as it is, a local file through the API."""
    return uri if is_http_url(uri) else image_route(product_id, position)


def first_shown(images: Iterable[ImageEntry], uri: str | None = None) -> ImageEntry | None:
    """The first image without an error (the one hits show), or the one stored as ``uri``."""
    for entry in sorted(images, key=lambda e: e.position):
        if entry.error is None and (uri is None or entry.uri == uri):
            return entry
    return None


def scrubbed_error(entry: ImageEntry) -> str | None:
    """A local image's error without the file's path (nor any other absolute path)."""
    if entry.error is None or is_http_url(entry.uri):
        return entry.error
    return _PATHISH.sub("<path>", entry.error.replace(entry.uri, f"image {entry.position}"))


def link_hits(answer: SearchResult, engine: Engine, request: Request) -> PublicSearchResult:
    """The answer with ``image_url`` on every hit; local ``image`` paths only for a writer."""
    local = [h.id for h in answer.hits if h.image and not is_http_url(h.image)]
    products = engine.get(local) if local else {}
    writer = holds_write_key(request)
    hits = []
    for hit in answer.hits:
        fields = dict(hit)
        uri, url = hit.image, None
        if uri and is_http_url(uri):
            url = uri
        elif uri:
            product = products.get(hit.id)
            entry = first_shown(product.images, uri) if product is not None else None
            url = image_route(hit.id, entry.position) if entry is not None else None
            if not writer:
                fields["image"] = None
        hits.append(PublicHit(**fields, image_url=url))
    return PublicSearchResult(
        hits=hits, total=answer.total, anchors=answer.anchors, session=answer.session
    )


def product_out(product: Product, request: Request) -> dict[str, Any]:
    """``GET /products/{id}``: images with ``url``; ``uri`` only for a write key's holder."""
    writer = holds_write_key(request)
    images = []
    for entry in sorted(product.images, key=lambda e: e.position):
        shown = writer or is_http_url(entry.uri)
        images.append(
            {
                "position": entry.position,
                "url": image_url(product.id, entry.uri, entry.position),
                **({"uri": entry.uri} if shown else {}),
                "hash": entry.hash,
                "error": entry.error if shown else scrubbed_error(entry),
            }
        )
    return {
        "id": product.id,
        "title": product.title,
        "description": product.description,
        "brand": product.brand,
        "category": product.category,
        "color": product.color,
        "price": product.price,
        "attributes": product.attributes,
        "images": images,
        "models": product.models,
        "revision": product.revision,
    }


def link_clusters(answer: dict[str, Any], engine: Engine, request: Request) -> dict[str, Any]:
    """Each cluster representative's ``image_url``; its local ``image`` only for a writer."""
    reps = [c["representative"] for c in answer.get("clusters", [])]
    products = engine.get([r["id"] for r in reps if r.get("image")])
    writer = holds_write_key(request)
    for rep in reps:
        uri, product = rep.get("image"), products.get(rep["id"])
        entry = first_shown(product.images, uri) if uri and product is not None else None
        rep["image_url"] = image_url(rep["id"], uri, entry.position) if uri and entry else None
        if uri and not is_http_url(uri) and not writer:
            rep["image"] = None
    return answer
