"""Product thumbnails for the visual map: the first loadable image, or a grey tile.

Images are read the way the indexer reads them (:func:`lookalike.images.read_bytes`): local
paths only inside the configured image roots, URLs only through the SSRF guard.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from lookalike.documents import Product
from lookalike.errors import ImageError
from lookalike.images import decode_image, read_bytes
from lookalike.settings import Settings

GREY = (200, 200, 200)
_IO_THREADS = 8


@dataclass(frozen=True)
class ImageAccess:
    """Where images may be read from (mirrors the indexer's settings)."""

    timeout: float = 10.0
    max_bytes: int = 20_000_000
    allowed_hosts: tuple[str, ...] = ()
    roots: tuple[Path, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageAccess:
        return cls(
            timeout=settings.image_timeout,
            max_bytes=settings.image_max_bytes,
            allowed_hosts=settings.image_allowed_hosts,
            roots=settings.image_roots,
        )


def grey_tile(size: int) -> Image.Image:
    return Image.new("RGB", (size, size), GREY)


def thumbnail(product: Product | None, size: int, access: ImageAccess) -> Image.Image:
    """A ``size`` x ``size`` square of the product's first loadable image (grey if none)."""
    if product is None:
        return grey_tile(size)
    for entry in sorted(product.images, key=lambda i: i.position):
        try:
            data = read_bytes(
                entry.uri,
                timeout=access.timeout,
                max_bytes=access.max_bytes,
                allowed_hosts=access.allowed_hosts,
                roots=access.roots,
            )
            image = decode_image(data, entry.uri, target_size=(size, size))
        except ImageError:
            continue
        except Exception:  # noqa: BLE001 - a hostile image costs its tile, not the map
            continue
        return ImageOps.pad(image, (size, size), color=(255, 255, 255))
    return grey_tile(size)


def thumbnails(
    products: dict[str, Product],
    ids: list[str],
    size: int,
    access: ImageAccess,
    done: Callable[[int], None] | None = None,
) -> dict[str, Image.Image]:
    """Thumbnails of ``ids`` (read in a few threads: URLs wait on the network); ``done(1)``
    after each."""

    def one(pid: str) -> Image.Image:
        tile = thumbnail(products.get(pid), size, access)
        if done is not None:
            done(1)
        return tile

    with ThreadPoolExecutor(_IO_THREADS) as pool:
        return dict(zip(ids, pool.map(one, ids), strict=True))
