"""Hostile image URLs and paths: refused before any connection, in every spelling.

No test here sends traffic anywhere but to a loopback server it starts: name resolution is
a fake ``resolve`` hook and HTTP goes through ``httpx.MockTransport`` unless stated.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from PIL import Image

from lookalike.errors import ImageError
from lookalike.images import load_image, read_bytes
from lookalike.netguard import URLGuard, check_path, is_public, parse_ip_literal
from lookalike.settings import split_list

PUBLIC = "93.184.216.34"


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, "JPEG")
    return buf.getvalue()


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"an IP literal must not be resolved: {host}")


class Recorder:
    """An httpx transport that answers from a table and records every request it is sent."""

    def __init__(self, routes: dict[str, httpx.Response]) -> None:
        self.routes = routes
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return self.routes.get(request.url.path, httpx.Response(404))

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self), follow_redirects=False)


BLOCKED_HOSTS = [
    "127.0.0.1",
    "127.1",
    "2130706433",  # decimal
    "0177.0.0.1",  # octal
    "017700000001",
    "0x7f.0.0.1",  # hex
    "0x7f000001",
    "0x7f.1",
    "[::1]",
    "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
    "[::ffff:7f00:1]",
    "[0:0:0:0:0:ffff:a9fe:a9fe]",  # 169.254.169.254, mapped
    "169.254.169.254",  # cloud metadata
    "0251.0376.0251.0376",  # the same, octal
    "2852039166",  # the same, decimal
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "0",
    "[::]",
    "[fe80::1]",
    "[fd00::1]",
    "[2002:7f00:1::]",  # 6to4 wrapping 127.0.0.1
    "224.0.0.1",
]


@pytest.mark.parametrize("host", BLOCKED_HOSTS)
def test_private_literals_refused_before_connecting(host: str) -> None:
    recorder = Recorder({"/a.jpg": httpx.Response(200, content=jpeg())})
    with recorder.client() as client, pytest.raises(ImageError, match="non-public") as info:
        read_bytes(f"http://{host}/a.jpg", client=client, resolve=no_dns)
    assert recorder.seen == []
    assert info.value.details["source"] == f"http://{host}/a.jpg"


@pytest.mark.parametrize(
    "text, expected",
    [("0x7f.1", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("::ffff:10.1.2.3", "10.1.2.3")],
)
def test_spellings_parse_like_the_resolver(text: str, expected: str) -> None:
    assert str(parse_ip_literal(text)) == expected


def test_public_literal_and_name_pass() -> None:
    assert is_public(parse_ip_literal(PUBLIC))  # type: ignore[arg-type]
    checked = URLGuard(resolve=lambda h, p: [PUBLIC]).check("https://img.example.com/x.jpg")
    assert (checked.address, checked.port, checked.host) == (PUBLIC, 443, "img.example.com")


@pytest.mark.parametrize(
    "answers",
    [["127.0.0.1"], ["169.254.169.254"], [PUBLIC, "10.0.0.7"], ["::1"], ["::ffff:192.168.0.1"]],
)
def test_names_resolving_to_private_addresses_refused(answers: list[str]) -> None:
    recorder = Recorder({})
    with recorder.client() as client, pytest.raises(ImageError, match="non-public"):
        read_bytes("http://metadata.google.internal/x", client=client, resolve=lambda h, p: answers)
    assert recorder.seen == []


def test_dns_rebinding_connects_to_the_checked_address() -> None:
    answers = iter([[PUBLIC], ["127.0.0.1"]])  # a rebinding server: public, then loopback
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    recorder = Recorder({"/a.jpg": httpx.Response(200, content=jpeg())})
    with recorder.client() as client:
        data = read_bytes("http://cdn.example.com/a.jpg", client=client, resolve=rebinding)
    assert data == jpeg() and calls == ["cdn.example.com"]
    [request] = recorder.seen
    assert request.url.host == PUBLIC  # the vetted address, not a second lookup
    assert request.headers["host"] == "cdn.example.com"
    assert request.extensions["sni_hostname"] == "cdn.example.com"


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1/a.jpg",
        "http://0x7f.1:8080/a.jpg",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://internal.example.com/a.jpg",  # resolves to a private address
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
    ],
)
def test_every_redirect_hop_is_checked(location: str) -> None:
    def resolve(host: str, port: int) -> list[str]:
        return ["10.1.1.1"] if host.startswith("internal") else [PUBLIC]

    recorder = Recorder({"/start": httpx.Response(302, headers={"Location": location})})
    with recorder.client() as client, pytest.raises(ImageError) as info:
        read_bytes("http://shop.example.com/start", client=client, resolve=resolve)
    assert len(recorder.seen) == 1  # the redirect target was never requested
    assert "redirected from http://shop.example.com/start" in info.value.message
    assert info.value.details["source"] == "http://shop.example.com/start"


def test_redirect_to_public_host_is_followed_and_pinned() -> None:
    recorder = Recorder(
        {
            "/start": httpx.Response(301, headers={"Location": "https://cdn.example.net/b.jpg"}),
            "/b.jpg": httpx.Response(200, content=jpeg()),
        }
    )
    with recorder.client() as client:
        data = read_bytes(
            "http://shop.example.com/start", client=client, resolve=lambda h, p: [PUBLIC]
        )
    assert data == jpeg()
    assert [str(r.url) for r in recorder.seen] == [
        f"http://{PUBLIC}/start",
        f"https://{PUBLIC}/b.jpg",
    ]


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/a.jpg",
        "gopher://example.com/",
        "dict://127.0.0.1:6379/",
        "jar:http://example.com/a.jpg",
        "http://user:pw@example.com/a.jpg",
        "http:///a.jpg",
        "http://example.com:99999/a.jpg",
    ],
)
def test_only_plain_http_urls(url: str) -> None:
    with pytest.raises(ImageError):
        read_bytes(url, resolve=lambda h, p: [PUBLIC], client=Recorder({}).client())


@pytest.mark.parametrize(
    "allowed, host, answers",
    [
        (["images.internal"], "images.internal", ["10.0.0.5"]),
        (["10.0.0.0/8"], "images.internal", ["10.0.0.5"]),
        (["127.0.0.1"], "127.0.0.1", []),
        (["LOCALHOST"], "localhost", ["127.0.0.1", "::1"]),
    ],
)
def test_allowed_hosts_reach_private_addresses(
    allowed: list[str], host: str, answers: list[str]
) -> None:
    recorder = Recorder({"/a.jpg": httpx.Response(200, content=jpeg())})
    with recorder.client() as client:
        data = read_bytes(
            f"http://{host}/a.jpg",
            client=client,
            allowed_hosts=allowed,
            resolve=lambda h, p: answers,
        )
    assert data == jpeg() and len(recorder.seen) == 1


def test_allowed_host_does_not_open_other_private_hosts() -> None:
    with pytest.raises(ImageError, match="non-public"):
        read_bytes("http://10.9.9.9/a.jpg", allowed_hosts=["images.internal", "10.0.0.0/24"])


def test_split_list_reads_the_settings_format() -> None:
    assert split_list(" a.example, 10.0.0.0/8 ,,") == ["a.example", "10.0.0.0/8"]
    assert split_list("/srv/a:/srv/b", ":") == ["/srv/a", "/srv/b"]


# -- a real loopback server: refused unless allowed, and refused before it sees a request --


class _Handler(BaseHTTPRequestHandler):
    hits = 0

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        type(self).hits += 1
        body = jpeg()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def local_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.hits = 0
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_loopback_server_needs_the_allow_list(local_server: str) -> None:
    with pytest.raises(ImageError, match="LOOKALIKE_IMAGE_ALLOWED_HOSTS"):
        load_image(f"{local_server}/a.jpg")
    assert _Handler.hits == 0
    assert load_image(f"{local_server}/a.jpg", allowed_hosts=["127.0.0.0/8"]).image.size == (8, 8)
    assert _Handler.hits == 1


# -- local paths ------------------------------------------------------------------------------


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    inside, outside = tmp_path / "images", tmp_path / "secret"
    inside.mkdir()
    outside.mkdir()
    (inside / "ok.jpg").write_bytes(jpeg())
    (outside / "key.jpg").write_bytes(jpeg())
    return inside, outside


def test_paths_inside_roots_are_read(roots: tuple[Path, Path]) -> None:
    inside, _ = roots
    (inside / "sub").mkdir()
    (inside / "sub" / "link.jpg").symlink_to(inside / "ok.jpg")
    for source in ("ok.jpg", "sub/../ok.jpg", "sub/link.jpg", str(inside / "ok.jpg")):
        assert read_bytes(source, base_dir=inside, roots=[inside]) == jpeg()


@pytest.mark.parametrize("name", ["../secret/key.jpg", "escape.jpg", "dir-escape/key.jpg"])
def test_paths_escaping_roots_are_refused(roots: tuple[Path, Path], name: str) -> None:
    inside, outside = roots
    (inside / "escape.jpg").symlink_to(outside / "key.jpg")
    (inside / "dir-escape").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ImageError, match="outside the allowed image roots"):
        read_bytes(name, base_dir=inside, roots=[inside])
    with pytest.raises(ImageError, match="outside the allowed image roots"):
        read_bytes(str(outside / "key.jpg"), roots=[inside])


def test_devices_fifos_and_folders_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # opening a FIFO for reading would block until a writer came
    (tmp_path / "dev.jpg").symlink_to("/dev/zero")  # endless bytes
    for path in (fifo, tmp_path / "dev.jpg", tmp_path, Path("/dev/zero")):
        with pytest.raises(ImageError, match="not a regular file"):
            read_bytes(str(path))
        with pytest.raises(ImageError):
            check_path(path, [tmp_path])


def test_settings_reach_the_index_context(tmp_path: Path, mobilenet_path: Path) -> None:
    from indexer.context import build_context
    from tests.conftest import model_settings

    settings = model_settings(
        tmp_path / "data",
        image_allowed_hosts="images.internal, 10.0.0.0/8",
        image_roots=f"{tmp_path}/a{os.pathsep}{tmp_path}/b",
    )
    ctx = build_context(settings)  # type: ignore[arg-type]
    ctx.engine.close()
    assert ctx.allowed_hosts == ("images.internal", "10.0.0.0/8")
    assert ctx.image_roots == (tmp_path / "a", tmp_path / "b")
