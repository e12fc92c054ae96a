"""Sessions in Redis: one capped list of events per session, expiring with its TTL.

A write is validated in full before anything is stored and lands in one MULTI/EXEC (append,
trim to the newest ``max_events``, renew the TTL), so a refused or failed batch stores
nothing. Rate limits (the ``limits`` library, fixed windows counted in Redis) are per session
and per client and count events, not requests, so large batches cannot dodge them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import redis
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter

from lookalike.errors import EngineUnavailable, InvalidInput, RateLimited
from lookalike.sessions.events import Event, check_session_id

KEY = "lookalike:session:{}"


@contextmanager
def _reachable() -> Iterator[None]:
    """Redis errors as the project's transient error (the API answers 503)."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError, StorageError) as exc:
        raise EngineUnavailable(f"the session store (Redis) does not answer: {exc}") from None


class SessionStore:
    """Events per session, with the limits a public, key-less endpoint needs."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl_s: int,
        max_events: int,
        max_batch: int,
        session_rate: str,
        client_rate: str,
    ) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.max_events = max_events
        self.max_batch = max_batch
        self.session_rate: RateLimitItem = parse(session_rate)
        self.client_rate: RateLimitItem = parse(client_rate)
        storage = RedisStorage(
            "redis://",
            connection_pool=client.connection_pool,
            key_prefix="lookalike:limits",
            wrap_exceptions=True,
        )
        self.limiter = FixedWindowRateLimiter(storage)

    @classmethod
    def from_url(cls, url: str, **limits: int | str) -> SessionStore:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        return cls(client, **limits)  # type: ignore[arg-type]

    # -- writes -----------------------------------------------------------------------------
    def check_batch(self, events: Sequence[object]) -> None:
        if not events:
            raise InvalidInput("a batch holds at least one event")
        if len(events) > self.max_batch:
            raise InvalidInput(
                f"at most {self.max_batch} events per batch",
                count=len(events),
                limit=self.max_batch,
            )

    def admit(self, session_id: str, client_id: str, count: int) -> None:
        """Count ``count`` events against both limits, or raise RateLimited counting nothing."""
        pairs = (
            (self.session_rate, ("session", session_id)),
            (self.client_rate, ("client", client_id)),
        )
        with _reachable():
            for item, ids in pairs:
                if not self.limiter.test(item, *ids, cost=count):
                    reset = self.limiter.get_window_stats(item, *ids).reset_time
                    raise RateLimited(
                        f"too many events for this {ids[0]}: at most {item.amount} per "
                        f"{item.get_expiry()} s",
                        retry_after=max(1, int(reset - time.time())),
                        limit=item.amount,
                    )
            for item, ids in pairs:
                self.limiter.hit(item, *ids, cost=count)

    def add(self, session_id: str, events: Sequence[Event]) -> int:
        """Append the events (oldest dropped past ``max_events``); returns the count kept."""
        key = KEY.format(check_session_id(session_id))
        rows = [e.model_dump_json() for e in events]
        with _reachable():
            pipe = self.client.pipeline(transaction=True)
            pipe.rpush(key, *rows)
            pipe.ltrim(key, -self.max_events, -1)
            pipe.expire(key, self.ttl_s)
            pipe.llen(key)
            return int(pipe.execute()[-1])

    def forget(self, session_id: str) -> bool:
        """Delete the session; True when there was one (nothing else keeps it)."""
        with _reachable():
            return bool(self.client.delete(KEY.format(check_session_id(session_id))))

    # -- reads ------------------------------------------------------------------------------
    def events(self, session_id: str) -> list[Event]:
        """The session's events, oldest first (empty for an unknown or expired session)."""
        with _reachable():
            rows: list[bytes] = cast(Any, self.client).lrange(
                KEY.format(check_session_id(session_id)), 0, -1
            )
        return [Event(**json.loads(r)) for r in rows]

    def expires_in(self, session_id: str) -> int | None:
        """Seconds until the session expires; None when there is no such session."""
        with _reachable():
            ttl = int(cast(Any, self.client).ttl(KEY.format(check_session_id(session_id))))
        return ttl if ttl >= 0 else None
