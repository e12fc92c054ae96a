"""/sessions over HTTP: a real Redis behind it, a real (model-free) catalogue in front of it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from indexer.context import build_context
from indexer.run import index_catalogue
from lookalike.api.app import create_app
from lookalike.settings import Settings, get_settings
from tests.conftest import make_records, write_catalogue
from tests.test_api import assert_error_shape


def session_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "image_model": "color-histogram",
        "image_tensor": None,
        "text_model": "none",
        "redis_url": get_settings().redis_url,
        "session_max_batch": 5,
        "session_max_events": 8,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    url = get_settings().redis_url
    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {url} ({exc}); scripts/ensure-redis starts one")
    root = tmp_path_factory.mktemp("sessions")
    source = write_catalogue(root / "catalogue", make_records(24))
    ctx = build_context(session_settings(root / "data"))
    index_catalogue(source, ctx)
    ctx.engine.close()
    return root / "data"


@pytest.fixture
def client(catalogue: Path) -> Iterator[TestClient]:
    with TestClient(create_app(session_settings(catalogue))) as c:
        yield c


def new_session() -> str:
    return f"shopper-{uuid.uuid4().hex}"


def test_events_round_trip_with_anchors_and_forget(client: TestClient) -> None:
    session = new_session()
    minute_ago_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    batch = [
        {"type": "view", "product_id": "p1"},
        {"type": "like", "product_id": "p2", "at": time.time() - 5},
        {"type": "add_to_cart", "product_id": "p3", "at": minute_ago_iso},
        {"type": "dismiss", "product_id": "p4"},
    ]
    posted = client.post(f"/sessions/{session}/events", json={"events": batch})
    assert posted.status_code == 200, posted.text
    assert posted.json() == {"session_id": session, "stored": 4, "events": 4, "expires_in": 86400}
    body = client.get(f"/sessions/{session}").json()
    assert [e["product_id"] for e in body["events"]] == ["p1", "p2", "p3", "p4"]
    assert [a["id"] for a in body["anchors"]] == ["p3", "p2", "p1"]
    assert body["anchors"][0]["events"][0]["type"] == "add_to_cart"
    assert [n["id"] for n in body["negatives"]] == ["p4"] and body["owned"] == ["p3"]
    assert 0 < body["expires_in"] <= 86400
    assert client.delete(f"/sessions/{session}").status_code == 204
    gone = client.get(f"/sessions/{session}").json()
    assert gone["events"] == [] and gone["anchors"] == [] and gone["expires_in"] is None


def test_bad_batches_get_a_clear_4xx_and_store_nothing(client: TestClient) -> None:
    session = new_session()
    url = f"/sessions/{session}/events"
    unknown = client.post(
        url,
        json={
            "events": [{"type": "view", "product_id": "p1"}, {"type": "like", "product_id": "nope"}]
        },
    )
    assert assert_error_shape(unknown, 422, "invalid_input")["details"]["unknown_ids"] == ["nope"]
    too_many = {"events": [{"type": "view", "product_id": "p1"}] * 6}
    assert (
        "at most 5 events"
        in assert_error_shape(client.post(url, json=too_many), 422, "invalid_input")["message"]
    )
    bad_type = {"events": [{"type": "stare", "product_id": "p1"}]}
    assert_error_shape(client.post(url, json=bad_type), 422, "invalid_input")
    future = {"events": [{"type": "view", "product_id": "p1", "at": time.time() + 86400}]}
    assert (
        "future"
        in assert_error_shape(client.post(url, json=future), 422, "invalid_input")["message"]
    )
    extra = {"events": [{"type": "view", "product_id": "p1", "price": 3}]}
    assert_error_shape(client.post(url, json=extra), 422, "invalid_input")
    assert_error_shape(client.post(url, json={"events": []}), 422, "invalid_input")
    bad_id = client.post(
        "/sessions/short/events", json={"events": [{"type": "view", "product_id": "p1"}]}
    )
    assert "session id" in assert_error_shape(bad_id, 422, "invalid_input")["message"]
    assert client.get(f"/sessions/{session}").json()["events"] == []


def test_rate_limits_per_session_and_per_client(catalogue: Path) -> None:
    app = create_app(
        session_settings(catalogue, session_rate="6/minute", session_client_rate="10/minute")
    )
    address = (
        f"10.{uuid.uuid4().int % 250}.0.{uuid.uuid4().int % 250}",
        5000,
    )  # this run's own client
    five = {"events": [{"type": "view", "product_id": f"p{i}"} for i in range(5)]}
    with TestClient(app, client=address) as c:
        first, second = new_session(), new_session()
        assert c.post(f"/sessions/{first}/events", json=five).status_code == 200
        refused = c.post(f"/sessions/{first}/events", json=five)  # 10 > 6 for this session
        error = assert_error_shape(refused, 429, "rate_limited")
        assert refused.headers["Retry-After"] == str(error["details"]["retry_after"])
        assert c.post(f"/sessions/{second}/events", json=five).status_code == 200
        client_full = c.post(
            f"/sessions/{new_session()}/events", json={"events": five["events"][:1]}
        )
        assert "client" in assert_error_shape(client_full, 429, "rate_limited")["message"]
        assert len(c.get(f"/sessions/{first}").json()["events"]) == 5  # the refused batch: nothing


def test_session_store_down_is_a_503(catalogue: Path) -> None:
    app = create_app(session_settings(catalogue, redis_url="redis://127.0.0.1:1/0"))
    with TestClient(app) as c:
        got = c.post(
            f"/sessions/{new_session()}/events",
            json={"events": [{"type": "view", "product_id": "p1"}]},
        )
        assert "session store" in assert_error_shape(got, 503, "engine_error")["message"]


def test_search_and_similar_take_their_anchors_from_the_session(client: TestClient) -> None:
    session = new_session()
    events = [
        {"type": "view", "product_id": "p1"},
        {"type": "like", "product_id": "p1"},
        {"type": "add_to_cart", "product_id": "p2"},
        {"type": "dismiss", "product_id": "p5"},
    ]
    assert client.post(f"/sessions/{session}/events", json={"events": events}).status_code == 200
    by_session = client.get("/search", params={"session_id": session, "k": 30}).json()
    named = client.get(
        "/search",
        params={"anchor_ids": "p1:4,p2:4", "negative_ids": "p5:3", "k": 30},
    ).json()
    assert by_session["anchors"] == ["p1", "p2"]  # 1 + 3 and 4: equal weights, by id
    assert [h["id"] for h in by_session["hits"]] == [h["id"] for h in named["hits"]]
    used = by_session["session"]
    assert used["id"] == session and [a["id"] for a in used["anchors"]] == ["p1", "p2"]
    assert [e["type"] for e in used["anchors"][0]["events"]] == ["view", "like"]
    assert [n["id"] for n in used["negatives"]] == ["p5"] and used["excluded"] == []
    assert {"p1", "p2", "p5"}.isdisjoint(h["id"] for h in by_session["hits"])
    # explicit anchors come first and keep their weight; the session fills in after them
    mixed = client.get("/search", params={"session_id": session, "anchor_ids": "p7"}).json()
    assert mixed["anchors"] == ["p7", "p1", "p2"]
    similar = client.get(
        "/products/p9/similar", params={"session_id": session, "exclude_owned": True, "k": 30}
    ).json()
    assert similar["anchors"][0] == "p9" and similar["session"]["excluded"] == ["p2"]
    assert "p2" not in {h["id"] for h in similar["hits"]}
    assert "session" not in client.get("/search", params={"anchor_ids": "p1"}).json()


def test_sessions_that_cannot_anchor_a_search_are_refused(client: TestClient) -> None:
    empty = client.get("/search", params={"session_id": new_session()})
    assert "no anchors" in assert_error_shape(empty, 422, "invalid_input")["message"]
    alone = client.get("/search", params={"exclude_owned": True, "anchor_ids": "p1"})
    assert "needs a session_id" in assert_error_shape(alone, 422, "invalid_input")["message"]
    bad = client.get("/search", params={"session_id": "no", "anchor_ids": "p1"})
    assert "session id" in assert_error_shape(bad, 422, "invalid_input")["message"]
    keyword = client.get("/search", params={"session_id": new_session(), "q": "circle"}).json()
    assert keyword["hits"] and keyword["session"]["anchors"] == []  # keywords alone still work


def test_cli_replays_a_session_file_as_the_api_answers_it(
    client: TestClient, catalogue: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from lookalike.cli import app

    now = time.time()
    events = [
        {"type": "view", "product_id": "p3", "at": now - 300},
        {"type": "like", "product_id": "p3", "at": now - 290},
        {"type": "view", "product_id": "p10", "at": now - 120},
        {"type": "dismiss", "product_id": "p11", "at": now - 60},
    ]
    session = new_session()
    assert client.post(f"/sessions/{session}/events", json={"events": events}).status_code == 200
    api = client.get("/search", params={"session_id": session, "k": 8}).json()
    path = tmp_path / "session.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events))
    for name, value in session_settings(catalogue).model_dump().items():
        if name in ("data_dir", "image_model", "text_model"):
            monkeypatch.setenv(f"LOOKALIKE_{name.upper()}", str(value))
    monkeypatch.setenv("LOOKALIKE_IMAGE_TENSOR", "")
    runner = CliRunner()
    result = runner.invoke(app, ["session", str(path), "--k", "8", "--json"])
    assert result.exit_code == 0, result.output
    cli = json.loads(result.stdout)
    assert [h["id"] for h in cli["hits"]] == [h["id"] for h in api["hits"]]
    assert cli["anchors"] == api["anchors"] == ["p3", "p10"]
    assert [n["id"] for n in cli["session"]["negatives"]] == ["p11"]
    stepped = runner.invoke(app, ["session", str(path), "--k", "3", "--steps"])
    assert stepped.exit_code == 0 and stepped.output.count("after ") == 4, stepped.output
    path.write_text(json.dumps([{"type": "view", "product_id": "nope"}]))
    refused = runner.invoke(app, ["session", str(path)])
    assert refused.exit_code == 2 and "unknown product ids" in refused.output
    path.write_text(json.dumps({"events": [{"type": "stare", "product_id": "p1"}]}))
    bad = runner.invoke(app, ["session", str(path)])
    assert bad.exit_code == 2 and "event 1" in bad.output
