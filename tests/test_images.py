"""lookalike.images: local files and a real local HTTP server, good and hostile inputs."""

from __future__ import annotations

import hashlib
import io
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from lookalike.errors import ImageError
from lookalike.images import (
    LoadedImage,
    decode_image,
    hash_bytes,
    load_image,
    load_images,
    read_bytes,
)


def jpeg_bytes(size: tuple[int, int] = (64, 48), color: str = "red", **save: object) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", **save)
    return buf.getvalue()


def png_bytes(size: tuple[int, int] = (40, 30), mode: str = "RGB", color: object = "blue") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, "PNG")  # type: ignore[arg-type]
    return buf.getvalue()


def png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width x height`` pixels (a decompression bomb's calling card)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0"))


# -- local files ---------------------------------------------------------------------------------


def test_local_jpeg_and_png(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes((64, 48)))
    (tmp_path / "b.png").write_bytes(png_bytes((40, 30)))
    a = load_image(str(tmp_path / "a.jpg"))
    b = load_image("b.png", base_dir=tmp_path)  # relative to base_dir
    assert isinstance(a, LoadedImage) and a.image.mode == "RGB" and a.image.size == (64, 48)
    assert b.image.mode == "RGB" and b.image.size == (40, 30) and b.source == "b.png"
    assert b.image.getpixel((0, 0)) == (0, 0, 255)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "BMP", "TIFF"])
def test_other_allowed_formats(tmp_path: Path, fmt: str) -> None:
    Image.new("RGB", (30, 20), "yellow").save(tmp_path / "x.img", fmt)
    loaded = load_image(str(tmp_path / "x.img"))
    assert loaded.image.mode == "RGB" and loaded.image.size == (30, 20)


def test_hash_is_sha256_of_bytes_and_stable(tmp_path: Path) -> None:
    data = jpeg_bytes()
    (tmp_path / "a.jpg").write_bytes(data)
    first = load_image(str(tmp_path / "a.jpg"))
    assert first.hash == hashlib.sha256(data).hexdigest() == hash_bytes(data)
    assert load_image(str(tmp_path / "a.jpg")).hash == first.hash
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(color="green"))
    assert load_image(str(tmp_path / "a.jpg")).hash != first.hash


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    (tmp_path / "r.jpg").write_bytes(jpeg_bytes((80, 40), exif=exif))
    assert Image.open(tmp_path / "r.jpg").size == (80, 40)
    assert load_image(str(tmp_path / "r.jpg")).image.size == (40, 80)


def test_draft_mode_decodes_large_jpeg_smaller(tmp_path: Path) -> None:
    (tmp_path / "big.jpg").write_bytes(jpeg_bytes((2000, 1600)))
    full = load_image(str(tmp_path / "big.jpg"), target_size=None).image
    small = load_image(str(tmp_path / "big.jpg"), target_size=(224, 224)).image
    assert full.size == (2000, 1600)
    assert small.size[0] < 2000 and small.size[1] < 1600
    assert small.size[0] >= 224 and small.size[1] >= 224  # draft never goes below the target


def test_transparent_png_is_composited_on_white(tmp_path: Path) -> None:
    (tmp_path / "t.png").write_bytes(png_bytes((10, 10), "RGBA", (255, 0, 0, 0)))
    image = load_image(str(tmp_path / "t.png")).image
    assert image.mode == "RGB" and image.getpixel((5, 5)) == (255, 255, 255)


@pytest.mark.parametrize(
    "name, data",
    [
        ("truncated.jpg", jpeg_bytes((300, 300), quality=95)[:1500]),
        ("random.jpg", bytes(range(256)) * 8),
        ("text.jpg", b"this is not an image, just text\n" * 10),
        ("empty.png", b""),
        ("bomb.png", png_header_claiming(100_000, 100_000)),
    ],
)
def test_bad_files_raise_image_error(tmp_path: Path, name: str, data: bytes) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ImageError) as info:
        load_image(str(tmp_path / name))
    assert name in info.value.message and str(info.value.details["source"]).endswith(name)


def test_decompression_bomb_warning_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    data = png_bytes((40, 40))  # 1600 pixels: between the limit and twice the limit -> warning
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError, match="too many pixels"):
        decode_image(data, "small-limit.png")


def test_guard_left_on() -> None:
    assert Image.MAX_IMAGE_PIXELS is not None


def test_format_outside_allow_list(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "x.ppm")  # PPM: a format Pillow reads, we do not
    with pytest.raises(ImageError, match="not a supported image"):
        load_image(str(tmp_path / "x.ppm"))


def test_missing_directory_and_oversize_files(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="cannot read"):
        load_image(str(tmp_path / "nope.jpg"))
    with pytest.raises(ImageError, match="cannot read"):
        load_image(str(tmp_path))
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes())
    with pytest.raises(ImageError, match="larger than 100 bytes"):
        load_image(str(tmp_path / "a.jpg"), max_bytes=100)
    with pytest.raises(ImageError, match="local paths are not allowed"):
        load_image(str(tmp_path / "a.jpg"), allow_local=False)


@pytest.mark.parametrize("url", ["file:///etc/hosts", "ftp://example.com/a.jpg", "data://x"])
def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(ImageError, match="unsupported URL scheme"):
        load_image(url)


def test_read_bytes_reads_raw_bytes(tmp_path: Path) -> None:
    data = jpeg_bytes()
    (tmp_path / "a.jpg").write_bytes(data)
    assert read_bytes(str(tmp_path / "a.jpg"), timeout=1.0, max_bytes=len(data)) == data
    assert decode_image(data, "a.jpg").size == (64, 48)


def test_load_images_never_raises(tmp_path: Path) -> None:
    (tmp_path / "ok.jpg").write_bytes(jpeg_bytes())
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    out = load_images(["ok.jpg", "bad.jpg", "missing.jpg", "ftp://x/y"], base_dir=tmp_path)
    assert isinstance(out[0], LoadedImage)
    assert all(isinstance(r, ImageError) for r in out[1:])


# -- http(s) ---------------------------------------------------------------------------------------

IMAGE = jpeg_bytes((50, 70), color="purple")
LOCAL = ("127.0.0.1",)  # the test server is trusted explicitly: loopback is refused by default
BIG = 50_000  # bytes served by the oversize endpoints; tests cap at 10_000


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    def _head(self, status: int = 200, length: int | None = None, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "image/jpeg")
        if length is not None:
            self.send_header("Content-Length", str(length))
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path
        if path == "/img.jpg":
            self._head(200, len(IMAGE))
            self.wfile.write(IMAGE)
        elif path == "/redirect":
            self._head(302, 0, Location="/img.jpg")
        elif path == "/loop":
            self._head(302, 0, Location="/loop")
        elif path == "/missing":
            self._head(404, 0)
        elif path == "/no-length":  # HTTP/1.0: the body ends when the connection closes
            self._head(200)
            self.wfile.write(b"\xff" * BIG)
        elif path == "/chunked":
            self.protocol_version = "HTTP/1.1"
            self.close_connection = True
            self._head(200, Transfer_Encoding="chunked")
            for _ in range(BIG // 1000):
                self.wfile.write(b"3e8\r\n" + b"\xff" * 1000 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/declared-huge":
            self._head(200, 10**9)
            self.wfile.write(b"\xff" * 100)
        elif path == "/slow":
            time.sleep(1.0)
            self._head(200, len(IMAGE))
            self.wfile.write(IMAGE)
        elif path == "/trickle":  # each read is quick, the whole download is not
            self._head(200, 40)
            for _ in range(40):
                self.wfile.write(b"\xff")
                self.wfile.flush()
                time.sleep(0.05)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up on slow endpoints are expected here


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as mp:
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
            mp.delenv(var, raising=False)
        httpd = _Server(("127.0.0.1", 0), _Handler)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{httpd.server_address[1]}"
        finally:
            httpd.shutdown()
            httpd.server_close()


def test_http_image(server: str) -> None:
    loaded = load_image(f"{server}/img.jpg", allowed_hosts=LOCAL)
    assert loaded.image.size == (50, 70) and loaded.hash == hash_bytes(IMAGE)
    assert loaded.source == f"{server}/img.jpg"


def test_http_redirect_is_followed(server: str) -> None:
    assert load_image(f"{server}/redirect", allowed_hosts=LOCAL).hash == hash_bytes(IMAGE)


@pytest.mark.parametrize(
    "path, message",
    [
        ("/loop", "redirects"),
        ("/missing", "HTTP 404"),
        ("/no-length", "larger than 10000 bytes"),
        ("/chunked", "larger than 10000 bytes"),
        ("/declared-huge", "larger than 10000 bytes"),
    ],
)
def test_http_failures(server: str, path: str, message: str) -> None:
    with pytest.raises(ImageError, match=message) as info:
        load_image(server + path, max_bytes=10_000, allowed_hosts=LOCAL)
    assert str(info.value.details["source"]) == server + path


@pytest.mark.parametrize("path", ["/slow", "/trickle"])
def test_http_timeouts(server: str, path: str) -> None:
    started = time.monotonic()
    with pytest.raises(ImageError, match="timed out"):
        load_image(server + path, timeout=0.3, allowed_hosts=LOCAL)
    assert time.monotonic() - started < 1.5


def test_load_images_mixes_http_and_files(server: str, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png_bytes())
    out = load_images(
        [f"{server}/img.jpg", "a.png", f"{server}/missing"], base_dir=tmp_path, allowed_hosts=LOCAL
    )
    assert [type(r).__name__ for r in out] == ["LoadedImage", "LoadedImage", "ImageError"]
