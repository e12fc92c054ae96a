"""/products/{id}/images/{position}: a product's image for the web page (thumbnails).

Only images a stored product names are served, never a path from the request. Local files go
through the same guard as indexing (inside ``LOOKALIKE_IMAGE_ROOTS`` when set, regular files
only, size cap) and must decode as an allowed image format, so the route can never hand out
arbitrary files; http(s) images are a redirect, the browser fetches them itself.
"""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse, Response
from PIL import Image
from starlette.concurrency import run_in_threadpool

from lookalike.api.deps import EngineDep, SettingsDep
from lookalike.api.imagelinks import scrubbed_error
from lookalike.api.security import holds_write_key
from lookalike.documents import ImageEntry
from lookalike.errors import ImageError, NotFound
from lookalike.images import ALLOWED_FORMATS, decode_image, has_scheme, read_bytes
from lookalike.settings import Settings

router = APIRouter(prefix="/products", tags=["images"])

MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
CACHE = {"Cache-Control": "private, max-age=300"}


def image_format(data: bytes, source: str) -> str:
    """The format of image bytes (header only), ImageError unless it is an allowed one."""
    Image.init()
    try:
        with Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS)) as img:
            fmt = str(img.format)
    except Exception:
        raise ImageError(
            f"not a supported image ({', '.join(ALLOWED_FORMATS)}): {source}", source=source
        ) from None
    if fmt not in MEDIA_TYPES:
        raise ImageError(f"image format {fmt} is not allowed: {source}", source=source)
    return fmt


def thumbnail_jpeg(data: bytes, source: str, size: int) -> bytes:
    """A JPEG at most ``size`` pixels on its longer side (aspect kept)."""
    image = decode_image(data, source, target_size=(size, size))
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def local_image(source: str, settings: Settings, size: int | None) -> tuple[bytes, str]:
    """Bytes and media type of a stored local image (thumbnail when ``size`` is given)."""
    data = read_bytes(source, max_bytes=settings.image_max_bytes, roots=settings.image_roots)
    if size is not None:
        return thumbnail_jpeg(data, source, size), "image/jpeg"
    return data, MEDIA_TYPES[image_format(data, source)]


@router.get(
    "/{product_id}/images/{position}",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The image or its thumbnail."},
        307: {"description": "Redirect to the image's http(s) URL."},
        404: {"description": "Unknown product or image position."},
        422: {"description": "The image cannot be read (outside the roots, missing, not one)."},
    },
)
async def product_image(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    product_id: Annotated[str, PathParam(min_length=1, max_length=512)],
    position: Annotated[int, PathParam(ge=0, le=10_000)],
    size: Annotated[
        int | None, Query(ge=16, le=1024, description="Longest side of a JPEG thumbnail.")
    ] = None,
) -> Response:
    """One image of a stored product: a local file (inside the image roots) or a redirect."""
    product = engine.get([product_id]).get(product_id)
    if product is None:
        raise NotFound(f"unknown product id: {product_id}", ids=[product_id])
    entry = next((e for e in product.images if e.position == position), None)
    if entry is None:
        raise NotFound(
            f"product {product_id} has no image at position {position}",
            id=product_id,
            position=position,
        )
    if entry.uri.lower().startswith(("http://", "https://")):
        return RedirectResponse(entry.uri, status_code=307)
    try:
        if has_scheme(entry.uri):
            raise ImageError(f"only http(s) image URLs can be shown: {entry.uri}")
        data, media_type = await run_in_threadpool(local_image, entry.uri, settings, size)
    except ImageError as exc:
        if holds_write_key(request):
            raise
        # a reader learns why, never where the file is on the server
        told = ImageEntry(position, entry.uri, error=exc.message)
        raise ImageError(scrubbed_error(told) or "", id=product_id, position=position) from None
    return Response(data, media_type=media_type, headers=CACHE)
