"""API keys: 401/403 in the one error shape, scopes, open or keyed reads, startup refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lookalike.api.app import create_app
from lookalike.api.security import weak_key_reason
from lookalike.errors import ConfigError
from tests.helpers_api import (
    READ,
    READ_KEY,
    WRITE,
    WRITE_BEARER,
    WRITE_KEY,
    api_records,
    keyed_settings,
)
from tests.test_api import assert_error_shape


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("security")
    return {"root": root, "records": api_records(root / "catalogue", 8)}


@pytest.fixture(scope="module")
def client(setup: dict[str, Any]) -> Iterator[TestClient]:
    settings = keyed_settings(setup["root"] / "data", setup["root"] / "catalogue")
    with TestClient(create_app(settings)) as c:
        assert c.post("/products", json=setup["records"], headers=WRITE).status_code == 200
        yield c


WRITE_CALLS = [
    ("post", "/products", {"json": [{"id": "z1", "images": ["https://example.com/a.jpg"]}]}),
    ("delete", "/products/p7", {}),
    ("post", "/products/delete", {"json": {"ids": ["p7"]}}),
    ("post", "/admin/reindex", {"json": {"image_model": "none-such-model"}}),
    ("get", "/jobs/0b6f3c1e", {}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), WRITE_CALLS)
def test_write_endpoints_need_a_write_key(
    client: TestClient, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    call = getattr(client, method)
    assert_error_shape(call(path, **kwargs), 401, "unauthorized")
    assert_error_shape(
        call(path, headers={"X-API-Key": "wrong-key"}, **kwargs), 401, "unauthorized"
    )
    assert_error_shape(
        call(path, headers={"Authorization": "Bearer nope"}, **kwargs), 401, "unauthorized"
    )
    assert_error_shape(call(path, headers=READ, **kwargs), 403, "forbidden")
    # Nothing was written by the refused calls.
    assert client.get("/products/p7").status_code == 200


def test_write_key_in_either_header(client: TestClient, setup: dict[str, Any]) -> None:
    extra = [dict(setup["records"][0], id="extra1")]
    assert client.post("/products", json=extra, headers=WRITE).json()["accepted"] == 1
    assert client.delete("/products/extra1", headers=WRITE_BEARER).json() == {
        "deleted": 1,
        "missing": [],
    }
    assert_error_shape(client.get("/products/extra1"), 404, "not_found")


def test_reads_open_by_default_but_a_wrong_key_is_refused(client: TestClient) -> None:
    assert client.get("/search", params={"q": "circle"}).status_code == 200
    assert client.get("/products/p1", headers=READ).status_code == 200
    assert client.get("/products/p1", headers=WRITE).status_code == 200
    assert_error_shape(client.get("/products/p1", headers={"X-API-Key": "x"}), 401, "unauthorized")


def test_reads_keyed_by_setting(setup: dict[str, Any]) -> None:
    settings = keyed_settings(
        setup["root"] / "data", setup["root"] / "catalogue", read_requires_key=True
    )
    with TestClient(create_app(settings)) as c:
        assert_error_shape(c.get("/products/p1"), 401, "unauthorized")
        assert_error_shape(c.get("/search", params={"q": "x"}), 401, "unauthorized")
        assert c.get("/products/p1", headers=READ).json()["id"] == "p1"
        assert c.get("/products/p1/similar", headers=WRITE_BEARER).status_code == 200
        assert c.get("/health").json()["status"] == "ok"  # probes carry no key


def test_development_writes_without_a_key_only_when_allowed(setup: dict[str, Any]) -> None:
    root = setup["root"]
    for allow, status in ((False, 401), (True, 200)):
        settings = keyed_settings(
            root / f"dev-{allow}",
            root / "catalogue",
            api_keys="",
            read_keys="",
            allow_anonymous_writes=allow,
        )
        with TestClient(create_app(settings)) as c:
            response = c.post("/products", json=setup["records"][:1])
            assert response.status_code == status, response.text


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"api_keys": ""}, "set LOOKALIKE_API_KEYS"),
        ({"api_keys": "changeme"}, "well-known default"),
        ({"api_keys": f"{WRITE_KEY},short"}, "key #2 is shorter than 16"),
        ({"api_keys": "a" * 40}, "too few distinct characters"),
        ({"read_keys": "password"}, "LOOKALIKE_READ_KEYS"),
        ({"allow_anonymous_writes": True}, "development only"),
    ],
)
def test_production_refuses_to_start_with_weak_secrets(
    tmp_path: Path, overrides: dict[str, object], message: str
) -> None:
    values: dict[str, object] = {"env": "production", "read_keys": READ_KEY, **overrides}
    settings = keyed_settings(tmp_path / "data", tmp_path, **values)
    with pytest.raises(ConfigError, match=message):
        create_app(settings)


def test_production_starts_with_strong_keys(tmp_path: Path) -> None:
    settings = keyed_settings(tmp_path / "data", tmp_path, env="production")
    with TestClient(create_app(settings)) as c:
        assert c.get("/health").status_code == 200
        assert_error_shape(c.post("/products", json=[{"id": "a"}]), 401, "unauthorized")


def test_weak_key_reasons() -> None:
    assert weak_key_reason(WRITE_KEY) is None
    assert weak_key_reason("Secret") == "a well-known default"
    assert weak_key_reason("abc") is not None
