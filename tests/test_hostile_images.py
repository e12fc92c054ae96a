"""Hostile image bytes: fuzzed corpora, decompression bombs, endless bodies, wrong formats.

Each must end as an :class:`ImageError` naming the source (never another exception, never
a hang) and decoding thousands of them must not grow the process's memory.
"""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from lookalike.errors import ImageError
from lookalike.images import MAX_PIXELS, decode_image, read_bytes

FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")
CORPUS = 5000
PUBLIC = "93.184.216.34"


def encoded(fmt: str, seed: int = 0, size: tuple[int, int] = (64, 48)) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt)
    return buf.getvalue()


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One random corruption: truncation, bit flips, garbage spliced in, or a repeated slice."""
    kind = int(rng.integers(0, 4))
    if kind == 0:
        return data[: int(rng.integers(0, len(data)))]
    buf = bytearray(data)
    if kind == 1:
        for _ in range(int(rng.integers(1, 16))):
            pos = int(rng.integers(0, len(buf)))
            buf[pos] ^= 1 << int(rng.integers(0, 8))
        return bytes(buf)
    pos = int(rng.integers(0, len(buf)))
    if kind == 2:
        junk = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
        return bytes(buf[:pos] + junk + buf[pos:])
    return bytes(buf[:pos] + buf[pos // 2 : pos] * 3 + buf[pos:])


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about some corrupt TIFF tags
def test_fuzzed_corpus_never_escapes_image_error() -> None:
    rng = np.random.default_rng(8)
    bases = [encoded(fmt, seed) for seed in range(3) for fmt in FORMATS]
    outcomes = {"decoded": 0, "error": 0}

    def run(count: int) -> None:
        for i in range(count):
            data = mutate(bases[i % len(bases)], rng)
            try:
                image = decode_image(data, f"fuzz-{i}")
            except ImageError as exc:
                assert exc.details["source"] == f"fuzz-{i}" and f"fuzz-{i}" in exc.message
                outcomes["error"] += 1
            else:
                assert image.mode == "RGB"
                outcomes["decoded"] += 1

    run(300)  # warm-up: decoders and allocator pools reach their working size
    before, started = rss_kib(), time.monotonic()
    run(CORPUS)
    growth_mib = (rss_kib() - before) / 1024
    took = time.monotonic() - started
    print(f"\n{CORPUS} fuzzed files: {outcomes}, RSS +{growth_mib:.1f} MiB, {took:.1f}s")
    assert outcomes["error"] > CORPUS // 4 and outcomes["decoded"] > 0
    assert growth_mib < 64


def _png(width: int, height: int, idat: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def deflate_bomb(width: int, height: int) -> bytes:
    """A real, valid PNG of zeros: ~1000x smaller compressed than decoded."""
    packer = zlib.compressobj(9)
    row = bytes(width + 1)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return _png(width, height, idat)


def gif_claiming(width: int, height: int) -> bytes:
    data = bytearray(encoded("GIF"))
    data[6:10] = struct.pack("<HH", width, height)  # logical screen
    frame = data.index(b"\x2c")  # image descriptor: left, top, width, height
    data[frame + 5 : frame + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(encoded("JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize(
    "name, make",
    [
        ("deflate-7000x7000.png", lambda: deflate_bomb(7000, 7000)),  # 49 MP: over our cap only
        ("claims-100k.png", lambda: _png(100_000, 100_000, zlib.compress(b"\0"))),
        ("screen-65535.gif", lambda: gif_claiming(65535, 65535)),
        ("sof-65000.jpg", lambda: jpeg_claiming(65000, 65000)),  # still 66 MP at 1/8 scale
    ],
)
def test_decompression_bombs_are_refused_cheaply(name: str, make: object) -> None:
    data = make()  # type: ignore[operator]
    before, started = rss_kib(), time.monotonic()
    with pytest.raises(ImageError, match="too many pixels") as info:
        decode_image(data, name)
    assert info.value.details["source"] == name
    assert time.monotonic() - started < 2.0
    assert (rss_kib() - before) / 1024 < 50  # refused from the header, never decoded
    assert MAX_PIXELS < 89_478_485  # below Pillow's own limit


WRONG_CONTENT = {
    "page.jpg": b"<!doctype html><html><body>not found</body></html>",
    "vector.jpg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>x()</script></svg>',
    "doc.png": b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF",
    "print.jpg": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
    "archive.png": b"PK\x03\x04" + bytes(64),
    "script.gif": b"#!/bin/sh\nrm -rf /\n",
}


def _other_format(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PPM", "ICO", "TGA", "PCX", "SGI", "IM"])
def test_formats_outside_the_allow_list_are_refused(fmt: str) -> None:
    with pytest.raises(ImageError, match="not a supported image"):
        decode_image(_other_format(fmt), f"x.{fmt.lower()}")


@pytest.mark.parametrize("name", sorted(WRONG_CONTENT))
def test_content_decides_not_the_name(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(WRONG_CONTENT[name])
    with pytest.raises(ImageError, match="not a supported image"):
        decode_image(read_bytes(name, base_dir=tmp_path), name)
    (tmp_path / "really-a-png.jpg").write_bytes(encoded("PNG"))  # allowed content, odd name
    assert decode_image((tmp_path / "really-a-png.jpg").read_bytes()).size == (64, 48)


def _client(handler: object) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


def test_content_type_is_not_trusted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = WRONG_CONTENT["page.jpg"]
        return httpx.Response(200, headers={"Content-Type": "image/jpeg"}, content=body)

    with _client(handler) as client:
        data = read_bytes("http://shop.example/a.jpg", client=client, resolve=lambda h, p: [PUBLIC])
    with pytest.raises(ImageError, match="not a supported image"):
        decode_image(data, "http://shop.example/a.jpg")


def test_endless_body_stops_at_the_size_cap() -> None:
    sent = [0]

    def endless() -> Iterator[bytes]:
        while True:
            sent[0] += 65536
            yield b"\xff" * 65536

    client = _client(lambda r: httpx.Response(200, content=endless()))
    with client, pytest.raises(ImageError, match="larger than 1000000 bytes"):
        read_bytes(
            "http://cdn.example/x",
            client=client,
            max_bytes=1_000_000,
            resolve=lambda h, p: [PUBLIC],
        )
    assert sent[0] < 1_200_000


def test_endless_slow_body_stops_at_the_deadline() -> None:
    def trickle() -> Iterator[bytes]:
        while True:
            time.sleep(0.02)
            yield b"\xff"

    started = time.monotonic()
    client = _client(lambda r: httpx.Response(200, content=trickle()))
    with client, pytest.raises(ImageError, match="timed out"):
        read_bytes(
            "http://cdn.example/x", client=client, timeout=0.5, resolve=lambda h, p: [PUBLIC]
        )
    assert time.monotonic() - started < 1.5


def test_huge_local_file_is_not_read_whole(tmp_path: Path) -> None:
    huge = tmp_path / "huge.jpg"
    with huge.open("wb") as fh:
        fh.truncate(5_000_000_000)  # sparse: 5 GB on paper, nothing on disk
    before = rss_kib()
    with pytest.raises(ImageError, match="larger than 1000000 bytes"):
        read_bytes(str(huge), max_bytes=1_000_000)
    assert (rss_kib() - before) / 1024 < 20


def test_pipeline_records_each_hostile_image_and_keeps_the_product(
    tmp_path: Path, mobilenet_path: Path
) -> None:
    """A batch where every product has one hostile image and one good one: nothing fails."""
    from indexer.context import build_context
    from indexer.run import index_catalogue
    from tests.conftest import make_records, model_settings, write_catalogue

    folder = tmp_path / "catalogue"
    hostile = {
        "bomb.png": deflate_bomb(7000, 7000),
        "truncated.jpg": encoded("JPEG", 1)[:300],
        "flipped.png": mutate(encoded("PNG", 2), np.random.default_rng(1)),
        **WRONG_CONTENT,
    }
    folder.mkdir()
    for name, data in hostile.items():
        (folder / name).write_bytes(data)
    records = make_records(len(hostile))
    for record, name in zip(records, sorted(hostile), strict=True):
        record["images"] = [name, *record["images"], "http://10.0.0.1/internal.jpg", "fifo.jpg"]
    os.mkfifo(folder / "fifo.jpg")
    catalogue = write_catalogue(folder, records)
    ctx = build_context(model_settings(tmp_path / "data"))  # type: ignore[arg-type]
    try:
        report = index_catalogue(catalogue, ctx)
        products = ctx.engine.get([r["id"] for r in records])
    finally:
        ctx.engine.close()
    assert report.batches.failed == [] and report.batches.inserted == len(records)
    errors = {
        (e["image"].rsplit("/", 1)[-1], e["error"].split(":")[0])
        for e in report.batches.image_errors
    }
    failed_names = {name for name, _ in errors}
    assert failed_names >= {"internal.jpg", "fifo.jpg", "bomb.png", "truncated.jpg", *WRONG_CONTENT}
    assert all(len(p.images) == 4 and p.images[1].error is None for p in products.values())
