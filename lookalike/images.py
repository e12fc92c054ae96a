"""Image loading: a local path or an http(s) URL to an RGB PIL image plus a content hash.

Every failure (missing file, network error, oversize body, undecodable or hostile file) becomes
an :class:`~lookalike.errors.ImageError` naming the source, so one bad image never breaks a batch.
The sha256 of the raw bytes lets the pipeline skip re-embedding an unchanged image.
"""

from __future__ import annotations

import hashlib
import io
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image, ImageOps, UnidentifiedImageError

from lookalike.errors import ImageError

# Only these decoders are ever tried: no EPS (Ghostscript), PSD, ICO ... parsers on untrusted bytes.
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
# The JPEG decoder reports multi-picture JPEGs straight from cameras as MPO.
_DECODED_FORMATS = frozenset(ALLOWED_FORMATS) | {"MPO"}
MAX_REDIRECTS = 5
DEFAULT_MAX_BYTES = 20_000_000


@dataclass(frozen=True)
class LoadedImage:
    """A decoded RGB image, the sha256 hex of its raw bytes, and where it came from."""

    image: Image.Image
    hash: str
    source: str


def hash_bytes(data: bytes) -> str:
    """sha256 hex of raw image bytes: the key for "this image has not changed"."""
    return hashlib.sha256(data).hexdigest()


def is_url(source: str) -> bool:
    """Whether a source names a URL (any scheme) rather than a local path."""
    return "://" in source


def read_bytes(
    source: str,
    *,
    base_dir: Path | None = None,
    timeout: float = 10.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allow_local: bool = True,
    client: httpx.Client | None = None,
) -> bytes:
    """Raw bytes of a local file or an http(s) URL, at most ``max_bytes`` of them.

    ``allow_local=False`` refuses file paths (for sources that come from untrusted requests).
    """
    source = str(source)
    if is_url(source):
        scheme = source.split("://", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise ImageError(f"unsupported URL scheme {scheme!r} in {source}", source=source)
        if client is not None:
            return _fetch(client, source, timeout, max_bytes)
        with _new_client(timeout) as own:
            return _fetch(own, source, timeout, max_bytes)
    if not allow_local:
        raise ImageError(f"local paths are not allowed here: {source}", source=source)
    return _read_file(source, base_dir, max_bytes)


fetch_bytes = read_bytes  # the name the indexer pipeline imports


def decode_image(
    data: bytes, source: str = "<bytes>", target_size: tuple[int, int] | None = (224, 224)
) -> Image.Image:
    """Decode bytes to an upright RGB image; ``target_size`` lets JPEGs decode at a reduced scale.

    Pillow's decompression-bomb guard stays on; its warning is raised as an error here too.
    """
    Image.init()  # register every plugin so ``formats`` below can name them (idempotent)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS)) as img:
                if img.format not in _DECODED_FORMATS:
                    raise ImageError(
                        f"image format {img.format} is not allowed: {source}", source=source
                    )
                if target_size is not None:
                    # JPEG only: decode at a reduced DCT scale, never below target_size.
                    img.draft("RGB", target_size)
                img.load()
                upright = ImageOps.exif_transpose(img) or img
                return _to_rgb(upright)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(
            f"image has too many pixels (decompression bomb?): {source}: {exc}", source=source
        ) from None
    except UnidentifiedImageError:
        raise ImageError(
            f"not a supported image ({', '.join(ALLOWED_FORMATS)}): {source}", source=source
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Truncated or corrupt data ("image file is truncated", broken chunks, bad headers).
        raise ImageError(f"cannot decode image {source}: {exc}", source=source) from None
    except Exception as exc:  # hostile files can trip other errors deep in a decoder
        raise ImageError(
            f"cannot decode image {source}: {type(exc).__name__}: {exc}", source=source
        ) from None


def load_image(
    source: str,
    *,
    base_dir: Path | None = None,
    timeout: float = 10.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
    target_size: tuple[int, int] | None = (224, 224),
    allow_local: bool = True,
    client: httpx.Client | None = None,
) -> LoadedImage:
    """Read, hash and decode one image; raises :class:`ImageError` on any failure."""
    data = read_bytes(
        source,
        base_dir=base_dir,
        timeout=timeout,
        max_bytes=max_bytes,
        allow_local=allow_local,
        client=client,
    )
    image = decode_image(data, str(source), target_size)
    return LoadedImage(image=image, hash=hash_bytes(data), source=str(source))


def load_images(
    sources: Iterable[str],
    *,
    base_dir: Path | None = None,
    timeout: float = 10.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
    target_size: tuple[int, int] | None = (224, 224),
    allow_local: bool = True,
) -> list[LoadedImage | ImageError]:
    """Load several images in order; a failure is returned in its slot instead of raised."""
    results: list[LoadedImage | ImageError] = []
    with _new_client(timeout) as client:  # one connection pool for the whole batch
        for source in sources:
            try:
                loaded = load_image(
                    source,
                    base_dir=base_dir,
                    timeout=timeout,
                    max_bytes=max_bytes,
                    target_size=target_size,
                    allow_local=allow_local,
                    client=client,
                )
            except ImageError as exc:
                results.append(exc)
            else:
                results.append(loaded)
    return results


def _new_client(timeout: float) -> httpx.Client:
    return httpx.Client(follow_redirects=True, max_redirects=MAX_REDIRECTS, timeout=timeout)


def _read_file(source: str, base_dir: Path | None, max_bytes: int) -> bytes:
    path = Path(source)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ImageError(
            f"cannot read image file {source}: {exc.strerror or exc}", source=source
        ) from None
    if len(data) > max_bytes:
        raise ImageError(f"image file is larger than {max_bytes} bytes: {source}", source=source)
    return data


def _fetch(client: httpx.Client, url: str, timeout: float, max_bytes: int) -> bytes:
    """GET with the size cap enforced while streaming and an overall deadline.

    httpx timeouts apply per network operation; the deadline also stops a server that trickles.
    """
    deadline = time.monotonic() + timeout
    try:
        with client.stream("GET", url, timeout=timeout) as resp:
            resp.raise_for_status()
            declared = resp.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise ImageError(f"image at {url} is larger than {max_bytes} bytes", source=url)
            buf = bytearray()
            for chunk in resp.iter_bytes():
                buf += chunk
                if len(buf) > max_bytes:
                    raise ImageError(f"image at {url} is larger than {max_bytes} bytes", source=url)
                if time.monotonic() > deadline:
                    raise ImageError(f"timed out after {timeout}s downloading {url}", source=url)
            return bytes(buf)
    except httpx.TimeoutException:
        raise ImageError(f"timed out after {timeout}s downloading {url}", source=url) from None
    except httpx.HTTPStatusError as exc:
        raise ImageError(
            f"HTTP {exc.response.status_code} for {url}",
            source=url,
            status_code=exc.response.status_code,
        ) from None
    except httpx.TooManyRedirects:
        raise ImageError(f"more than {MAX_REDIRECTS} redirects for {url}", source=url) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise ImageError(f"cannot download {url}: {exc}", source=url) from None


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB, with transparent areas composited on white (product photos are shot on white)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")
