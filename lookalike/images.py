"""Image loading: a local path or an http(s) URL to an RGB PIL image plus a content hash.

Every failure (missing file, network error, oversize body, undecodable or hostile file) becomes
an :class:`~lookalike.errors.ImageError` naming the source, so one bad image never breaks a batch.
The sha256 of the raw bytes lets the pipeline skip re-embedding an unchanged image.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image, ImageOps, UnidentifiedImageError

from lookalike.errors import ImageError
from lookalike.netguard import Resolver, URLGuard, check_path

# Only these decoders are ever tried: no EPS (Ghostscript), PSD, ICO ... parsers on untrusted bytes.
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
# The JPEG decoder reports multi-picture JPEGs straight from cameras as MPO.
_DECODED_FORMATS = frozenset(ALLOWED_FORMATS) | {"MPO"}
MAX_REDIRECTS = 5
DEFAULT_MAX_BYTES = 20_000_000
# Pixels decoded at most (after JPEG draft scaling): 40 MP is ~120 MB as RGB, which bounds a
# worker's memory per image well below Pillow's own bomb limit (~89 MP, ~270 MB).
MAX_PIXELS = 40_000_000


@dataclass(frozen=True)
class LoadedImage:
    """A decoded RGB image, the sha256 hex of its raw bytes, and where it came from."""

    image: Image.Image
    hash: str
    source: str


def hash_bytes(data: bytes) -> str:
    """sha256 hex of raw image bytes: the key for "this image has not changed"."""
    return hashlib.sha256(data).hexdigest()


def has_scheme(source: str) -> bool:
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
    allowed_hosts: Sequence[str] = (),
    resolve: Resolver | None = None,
    roots: Sequence[Path] = (),
) -> bytes:
    """Raw bytes of a local file or an http(s) URL, at most ``max_bytes`` of them.

    ``allow_local=False`` refuses file paths (for sources that come from untrusted requests).
    URLs must reach public addresses unless their host is in ``allowed_hosts``; local paths
    must lie inside ``roots`` when roots are given (see :mod:`lookalike.netguard`).
    """
    source = str(source)
    if has_scheme(source):
        guard = URLGuard(allowed_hosts, resolve)  # each hop is resolved and checked once
        if client is not None:
            return _fetch(client, source, timeout, max_bytes, guard)
        with _new_client(timeout) as own:
            return _fetch(own, source, timeout, max_bytes, guard)
    if not allow_local:
        raise ImageError(f"local paths are not allowed here: {source}", source=source)
    return _read_file(source, base_dir, max_bytes, roots)


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
                width, height = img.size
                if width * height > MAX_PIXELS:  # only the first frame is ever decoded
                    raise Image.DecompressionBombError(
                        f"{width}x{height} pixels is over the {MAX_PIXELS} pixel limit"
                    )
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
    allowed_hosts: Sequence[str] = (),
    resolve: Resolver | None = None,
    roots: Sequence[Path] = (),
) -> LoadedImage:
    """Read, hash and decode one image; raises :class:`ImageError` on any failure."""
    data = read_bytes(
        source,
        base_dir=base_dir,
        timeout=timeout,
        max_bytes=max_bytes,
        allow_local=allow_local,
        client=client,
        allowed_hosts=allowed_hosts,
        resolve=resolve,
        roots=roots,
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
    allowed_hosts: Sequence[str] = (),
    resolve: Resolver | None = None,
    roots: Sequence[Path] = (),
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
                    allowed_hosts=allowed_hosts,
                    resolve=resolve,
                    roots=roots,
                )
            except ImageError as exc:
                results.append(exc)
            else:
                results.append(loaded)
    return results


def _new_client(timeout: float) -> httpx.Client:
    """Redirects are followed by :func:`_fetch` (each hop re-checked); no proxies from the env."""
    return httpx.Client(follow_redirects=False, timeout=timeout, trust_env=False)


def _read_file(source: str, base_dir: Path | None, max_bytes: int, roots: Sequence[Path]) -> bytes:
    path = Path(source)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    real = check_path(path, roots)
    try:
        # O_NONBLOCK: a FIFO swapped in after the check cannot block the open.
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ImageError(f"not a regular file: {source}", source=source)
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ImageError(
            f"cannot read image file {source}: {exc.strerror or exc}", source=source
        ) from None
    if len(data) > max_bytes:
        raise ImageError(f"image file is larger than {max_bytes} bytes: {source}", source=source)
    return data


def _pinned(client: httpx.Client, url: str, guard: URLGuard, timeout: float) -> httpx.Request:
    """A GET for ``url`` sent to the address the guard vetted (no second DNS lookup).

    The Host header and TLS server name keep the original host, so virtual hosts and
    certificate checks work as if the name had been resolved normally.
    """
    checked = guard.check(url)
    original = httpx.URL(url)
    target = original.copy_with(host=checked.address)
    return client.build_request(
        "GET",
        target,
        headers={"Host": original.netloc.decode("ascii")},
        extensions={"sni_hostname": checked.host},
        timeout=timeout,
    )


def _fetch(
    client: httpx.Client, url: str, timeout: float, max_bytes: int, guard: URLGuard
) -> bytes:
    """GET with the size cap enforced while streaming and an overall deadline.

    httpx timeouts apply per network operation; the deadline also stops a server that trickles.
    Redirects are followed here, at most ``MAX_REDIRECTS``, each target checked again.
    """
    deadline = time.monotonic() + timeout
    current = url
    try:
        for _hop in range(MAX_REDIRECTS + 1):
            remaining = max(0.001, deadline - time.monotonic())
            resp = client.send(_pinned(client, current, guard, remaining), stream=True)
            try:
                if resp.is_redirect:
                    current = str(httpx.URL(current).join(resp.headers["location"]))
                    continue
                return _read_body(resp, url, timeout, max_bytes, deadline)
            finally:
                resp.close()
        raise ImageError(f"more than {MAX_REDIRECTS} redirects for {url}", source=url)
    except httpx.TimeoutException:
        raise ImageError(f"timed out after {timeout}s downloading {url}", source=url) from None
    except httpx.HTTPStatusError as exc:
        raise ImageError(
            f"HTTP {exc.response.status_code} for {url}",
            source=url,
            status_code=exc.response.status_code,
        ) from None
    except ImageError as exc:
        if exc.details.get("source") != url:  # a refused redirect hop: name the catalogue URL
            raise ImageError(f"{exc.message} (redirected from {url})", source=url) from None
        raise
    except (httpx.HTTPError, httpx.InvalidURL, KeyError) as exc:
        raise ImageError(f"cannot download {url}: {exc}", source=url) from None


def _read_body(
    resp: httpx.Response, url: str, timeout: float, max_bytes: int, deadline: float
) -> bytes:
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


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB, with transparent areas composited on white (product photos are shot on white)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")
