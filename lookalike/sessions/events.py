"""What a shopper did: one event is a type, a product id and a time."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from lookalike.engines import Engine
from lookalike.errors import InvalidInput

EventType = Literal["view", "like", "add_to_cart", "purchase", "dismiss"]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)

# Opaque ids a storefront makes up (a cookie, a UUID): short, URL-safe, hard to guess if long.
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{8,128}")
MAX_PRODUCT_ID = 256
FUTURE_SLACK_S = 300  # clocks of storefront servers drift: a few minutes ahead is accepted


class EventIn(BaseModel):
    """An event as a storefront sends it; ``at`` (ISO 8601 or Unix seconds) defaults to now."""

    model_config = ConfigDict(extra="forbid")

    type: EventType
    product_id: str = Field(min_length=1, max_length=MAX_PRODUCT_ID)
    at: datetime | float | None = Field(
        None, description="When it happened: ISO 8601 or Unix seconds; the server's now if absent."
    )


class Event(BaseModel):
    """An event as stored: the time resolved to Unix seconds."""

    model_config = ConfigDict(frozen=True)

    type: EventType
    product_id: str
    at: float

    @classmethod
    def accept(cls, event: EventIn, now: float, max_age_s: float) -> Event:
        """Resolve the time; refuse times in the future or older than the session can keep."""
        if event.at is None:
            at = now
        elif isinstance(event.at, datetime):
            if event.at.tzinfo is None:
                raise InvalidInput("event time needs a time zone (e.g. 2026-12-02T10:00:00Z)")
            at = event.at.timestamp()
        else:
            at = float(event.at)
        if at > now + FUTURE_SLACK_S:
            raise InvalidInput(
                "event time is in the future", product_id=event.product_id, at=at, now=now
            )
        if at < now - max_age_s:
            raise InvalidInput(
                f"event is older than the session TTL ({int(max_age_s)} s)",
                product_id=event.product_id,
                at=at,
            )
        return cls(type=event.type, product_id=event.product_id, at=at)


def check_session_id(session_id: str) -> str:
    """The id, or InvalidInput: 8-128 characters from ``A-Z a-z 0-9 _ -``."""
    if not SESSION_ID.fullmatch(session_id):
        raise InvalidInput(
            "session id must be 8 to 128 characters from A-Z, a-z, 0-9, '_' and '-'",
            session_id=session_id[:140],
        )
    return session_id


def check_known(engine: Engine, events: list[Event]) -> None:
    """InvalidInput listing the product ids the catalogue does not hold (store nothing then)."""
    wanted = list(dict.fromkeys(e.product_id for e in events))
    unknown = sorted(set(wanted) - set(engine.fingerprints(wanted)))
    if unknown:
        raise InvalidInput(
            f"unknown product ids ({len(unknown)}): nothing was stored", unknown_ids=unknown
        )
