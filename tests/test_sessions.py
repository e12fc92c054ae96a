"""Shopper sessions against a real Redis: storing, capping, expiring, limits, decayed anchors."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
import redis

from lookalike.errors import InvalidInput, RateLimited
from lookalike.sessions import Event, EventIn, SessionStore, check_session_id, session_anchors
from lookalike.sessions.anchors import EVENT_WEIGHTS
from lookalike.settings import get_settings

HOUR = 3600.0


@pytest.fixture
def store() -> SessionStore:
    url = get_settings().redis_url
    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {url} ({exc}); scripts/ensure-redis starts one")
    return SessionStore.from_url(
        url,
        ttl_s=120,
        max_events=5,
        max_batch=4,
        session_rate="9/minute",
        client_rate="1000/minute",
    )


def sid() -> str:
    return f"test-{uuid.uuid4().hex}"


def ev(kind: str, pid: str, at: float) -> Event:
    return Event(type=kind, product_id=pid, at=at)  # type: ignore[arg-type]


def test_events_are_kept_newest_last_capped_and_expire(store: SessionStore) -> None:
    session, now = sid(), time.time()
    assert store.events(session) == [] and store.expires_in(session) is None
    first = [ev("view", f"p{i}", now - 10 + i) for i in range(4)]
    assert store.add(session, first) == 4
    assert store.add(session, [ev("like", "p9", now), ev("dismiss", "p8", now)]) == 5
    kept = store.events(session)
    assert [e.product_id for e in kept] == ["p1", "p2", "p3", "p9", "p8"]  # oldest dropped
    assert 0 < (store.expires_in(session) or 0) <= 120
    assert store.forget(session) and store.events(session) == []
    assert not store.forget(session)


def test_rate_limit_counts_events_and_refuses_without_counting(store: SessionStore) -> None:
    session = sid()
    store.admit(session, "client-a", 4)
    store.admit(session, "client-a", 4)
    with pytest.raises(RateLimited) as refused:
        store.admit(session, "client-a", 4)  # 12 > 9 per minute
    assert 1 <= refused.value.details["retry_after"] <= 60
    store.admit(session, "client-a", 1)  # the refused call counted nothing: 9 of 9


def test_batches_and_ids_are_checked(store: SessionStore) -> None:
    with pytest.raises(InvalidInput, match="at most 4 events"):
        store.check_batch([object()] * 5)
    with pytest.raises(InvalidInput, match="at least one"):
        store.check_batch([])
    for bad in ("short", "has space in it", "x" * 129, "semi;colon;"):
        with pytest.raises(InvalidInput, match="session id"):
            check_session_id(bad)
    assert check_session_id("a-valid_ID-123") == "a-valid_ID-123"


def test_event_times_resolve_and_bad_times_are_refused() -> None:
    now = time.time()
    assert Event.accept(EventIn(type="view", product_id="p"), now, HOUR).at == now
    iso = datetime.fromtimestamp(now - 60, tz=UTC)
    assert Event.accept(
        EventIn(type="like", product_id="p", at=iso), now, HOUR
    ).at == pytest.approx(now - 60)
    with pytest.raises(InvalidInput, match="future"):
        Event.accept(EventIn(type="view", product_id="p", at=now + 3600), now, HOUR)
    with pytest.raises(InvalidInput, match="older than the session TTL"):
        Event.accept(EventIn(type="view", product_id="p", at=now - 2 * HOUR), now, HOUR)
    with pytest.raises(InvalidInput, match="time zone"):
        Event.accept(EventIn(type="view", product_id="p", at=datetime(2026, 1, 1)), now, HOUR)
    with pytest.raises(ValueError):
        EventIn(type="stare", product_id="p")  # type: ignore[arg-type]


def test_anchors_weigh_kind_and_fade_with_age() -> None:
    now = 10 * HOUR
    events = [
        ev("view", "old", now - 2 * HOUR),  # four half-lives of 30 min: 1/16
        ev("view", "seen", now - 60),
        ev("view", "seen", now - 30),
        ev("like", "liked", now),
        ev("add_to_cart", "cart", now),
        ev("view", "meh", now - 10),
        ev("dismiss", "meh", now),
        ev("purchase", "bought", now - 1800),  # one half-life: 2 -> 1
    ]
    got = session_anchors(events, now, half_life_s=1800)
    weights = {a.id: a.weight for a in got.anchors}
    assert [a.id for a in got.anchors] == ["cart", "liked", "seen", "bought", "old"]
    assert weights["cart"] == EVENT_WEIGHTS["add_to_cart"] and weights["liked"] == 3.0
    assert weights["seen"] == pytest.approx(2 * 0.5 ** (45 / 1800), rel=1e-3)
    assert weights["bought"] == pytest.approx(1.0) and weights["old"] == pytest.approx(1 / 16)
    assert [(n.id, n.weight) for n in got.negatives] == [("meh", pytest.approx(2.0, rel=1e-2))]
    assert [e.type for e in got.negatives[0].events] == ["view", "dismiss"]
    assert got.owned == {"cart", "bought"}
    strongest = session_anchors(events, now, half_life_s=1800, limit=2)
    assert [a.id for a in strongest.anchors] == ["cart", "liked"] and not strongest.negatives
    assert not session_anchors([], now, half_life_s=1800)
