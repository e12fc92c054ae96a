"""The web routes without a browser: the page, its static files, and product images.

Images: only files a stored product names, inside the image roots when they are set, and only
real images; http(s) images redirect; unknown products and positions get the one 404 shape.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lookalike.api.app import create_app
from lookalike.documents import Document, ImageEntry
from lookalike.engines import create_engine
from lookalike.settings import Settings
from tests.test_api import assert_error_shape


def photo(path: Path, size: tuple[int, int] = (120, 80), fmt: str = "JPEG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 40, 40)).save(path, format=fmt)
    return path


def product(pid: str, *uris: str) -> Document:
    images = [ImageEntry(position=i, uri=u) for i, u in enumerate(uris)]
    return Document(id=pid, title=f"product {pid}", category="test", images=images)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    roots = tmp_path / "photos"
    outside = photo(tmp_path / "elsewhere" / "secret.jpg")
    link = roots / "link.jpg"
    photo(roots / "a.jpg")
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, link)
    (roots / "notes.jpg").write_text("root:x:0:0:root:/root:/bin/bash\n")
    return {
        "roots": roots,
        "inside": roots / "a.jpg",
        "png": photo(roots / "b.png", (40, 60), "PNG"),
        "outside": outside,
        "link": link,
        "text": roots / "notes.jpg",
    }


def client_for(tmp_path: Path, files: dict[str, Path], roots: str) -> TestClient:
    settings = Settings(data_dir=tmp_path / "data", image_roots=roots, text_model="none")
    engine = create_engine("embedded", settings.data_dir)
    engine.upsert(
        [
            product("in", str(files["inside"]), str(files["png"])),
            product("out", str(files["outside"])),
            product("link", str(files["link"])),
            product("text", str(files["text"])),
            product("remote", "https://images.example.com/shoe.jpg?v=2"),
            product("ftp", "ftp://images.example.com/shoe.jpg"),
        ]
    )
    return TestClient(create_app(settings, engine=engine), follow_redirects=False)


@pytest.fixture
def client(tmp_path: Path, files: dict[str, Path]) -> Iterator[TestClient]:
    with client_for(tmp_path, files, str(files["roots"])) as c:
        yield c


def test_image_inside_roots_is_served_as_is(client: TestClient, files: dict[str, Path]) -> None:
    r = client.get("/products/in/images/0")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content == files["inside"].read_bytes()
    r = client.get("/products/in/images/1")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size == (40, 60)


def test_thumbnail_is_a_small_jpeg(client: TestClient) -> None:
    r = client.get("/products/in/images/0", params={"size": 32})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    thumb = Image.open(io.BytesIO(r.content))
    assert thumb.format == "JPEG" and max(thumb.size) == 32
    assert thumb.size == (32, 21)  # 120x80 keeps its aspect
    assert_error_shape(
        client.get("/products/in/images/0", params={"size": 5000}), 422, "invalid_input"
    )


@pytest.mark.parametrize("pid", ["out", "link"])
def test_outside_roots_is_refused(client: TestClient, pid: str) -> None:
    err = assert_error_shape(client.get(f"/products/{pid}/images/0"), 422, "image_error")
    assert "outside the allowed image roots" in err["message"]
    assert_error_shape(client.get(f"/products/{pid}/images/0?size=64"), 422, "image_error")


def test_a_file_that_is_not_an_image_is_never_served(client: TestClient) -> None:
    for url in ("/products/text/images/0", "/products/text/images/0?size=64"):
        r = client.get(url)
        err = assert_error_shape(r, 422, "image_error")
        assert "root:x" not in r.text and "not a supported image" in err["message"]


def test_without_roots_any_stored_image_but_still_only_images(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    with client_for(tmp_path, files, "") as c:
        assert c.get("/products/out/images/0").content == files["outside"].read_bytes()
        assert_error_shape(c.get("/products/text/images/0"), 422, "image_error")


def test_url_images_redirect(client: TestClient) -> None:
    r = client.get("/products/remote/images/0", params={"size": 160})
    assert r.status_code == 307
    assert r.headers["location"] == "https://images.example.com/shoe.jpg?v=2"
    err = assert_error_shape(client.get("/products/ftp/images/0"), 422, "image_error")
    assert "http(s)" in err["message"]


def test_unknown_product_or_position_is_the_json_404(client: TestClient) -> None:
    err = assert_error_shape(client.get("/products/nope/images/0"), 404, "not_found")
    assert "nope" in err["message"]
    err = assert_error_shape(client.get("/products/in/images/7"), 404, "not_found")
    assert "position 7" in err["message"]
    assert_error_shape(client.get("/products/in/images/-1"), 422, "invalid_input")


def test_page_and_static_files(client: TestClient) -> None:
    for path in ("/", "/ui"):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/static/app.js">' in r.text
        assert 'href="/static/style.css"' in r.text
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "/products/" in js.text and "/search" in js.text
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")
    for name in ("index.html", "__init__.py", "..%2Fapp.py", "%2E%2E%2Fsettings.py"):
        assert_error_shape(client.get(f"/static/{name}"), 404, "not_found")
