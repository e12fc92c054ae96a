"""/sessions: what a shopper did, kept in Redis, and the anchors it implies.

Shoppers are anonymous, so posting events needs no write key (only read access, like every
route); the per-session and per-client rate limits and the batch cap stand in for one.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from lookalike.api.deps import EngineDep, SettingsDep
from lookalike.engines import Engine
from lookalike.errors import InvalidInput
from lookalike.sessions import (
    Event,
    EventIn,
    SessionAnchor,
    SessionStore,
    check_known,
    check_session_id,
    session_anchors,
)
from lookalike.settings import Settings
from reranker import run
from reranker.request import RerankRequest
from reranker.results import SearchResult, SessionUsed
from reranker.sessions import apply_session

router = APIRouter(prefix="/sessions", tags=["sessions"])

SessionId = Annotated[
    str, Path(description="An opaque id the storefront makes up: 8-128 of A-Z a-z 0-9 _ -.")
]


def session_store(request: Request, settings: SettingsDep) -> SessionStore:
    """The app's one session store (its Redis connection pool is shared by all requests)."""
    store: SessionStore | None = getattr(request.app.state, "sessions", None)
    if store is None:
        store = open_session_store(settings)
        request.app.state.sessions = store
    return store


def open_session_store(settings: Settings) -> SessionStore:
    return SessionStore.from_url(
        settings.redis_url,
        ttl_s=settings.session_ttl,
        max_events=settings.session_max_events,
        max_batch=settings.session_max_batch,
        session_rate=settings.session_rate,
        client_rate=settings.session_client_rate,
    )


SessionsDep = Annotated[SessionStore, Depends(session_store)]


class EventsIn(BaseModel):
    events: list[EventIn] = Field(description="The events, oldest first.")


class EventsOut(BaseModel):
    session_id: str
    stored: int = Field(description="Events stored by this call.")
    events: int = Field(description="Events the session now holds.")
    expires_in: int = Field(description="Seconds until the session expires if nothing follows.")


class AnchorOut(BaseModel):
    id: str
    weight: float
    events: list[Event] = Field(description="The events that made this anchor.")


class SessionOut(BaseModel):
    session_id: str
    events: list[Event]
    anchors: list[AnchorOut]
    negatives: list[AnchorOut]
    owned: list[str] = Field(description="In the cart or bought (left out with exclude_owned).")
    expires_in: int | None


@router.post("/{session_id}/events", response_model=EventsOut)
def post_events(
    session_id: SessionId,
    request: Request,
    body: Annotated[EventsIn, Body()],
    store: SessionsDep,
    engine: EngineDep,
) -> Any:
    """Add a batch of events; the whole batch is checked first, so a refused one stores nothing.

    422 for unknown product ids (listed in ``details.unknown_ids``), bad types or times, and
    batches over ``LOOKALIKE_SESSION_MAX_BATCH``; 429 with ``Retry-After`` past a rate limit.
    """
    check_session_id(session_id)
    store.check_batch(body.events)
    now = time.time()
    events = [Event.accept(e, now, store.ttl_s) for e in body.events]
    check_known(engine, events)
    client = request.client.host if request.client else "unknown"
    store.admit(session_id, client, len(events))
    held = store.add(session_id, events)
    return EventsOut(session_id=session_id, stored=len(events), events=held, expires_in=store.ttl_s)


def _anchor_out(anchor: SessionAnchor) -> AnchorOut:
    return AnchorOut(id=anchor.id, weight=anchor.weight, events=list(anchor.events))


@router.get("/{session_id}", response_model=SessionOut)
def get_session(session_id: SessionId, store: SessionsDep, settings: SettingsDep) -> Any:
    """The session's events and the anchors and negatives they imply now."""
    events = store.events(session_id)
    implied = session_anchors(events, time.time(), half_life_s=settings.session_half_life)
    return SessionOut(
        session_id=session_id,
        events=events,
        anchors=[_anchor_out(a) for a in implied.anchors],
        negatives=[_anchor_out(a) for a in implied.negatives],
        owned=sorted(implied.owned),
        expires_in=store.expires_in(session_id),
    )


@router.delete("/{session_id}", status_code=204)
def forget_session(session_id: SessionId, store: SessionsDep) -> Response:
    """Forget the session now (nothing else keeps it); 204 whether or not it existed."""
    store.forget(session_id)
    return Response(status_code=204)


class SessionQuery:
    """``session_id`` and ``exclude_owned`` on /search and /products/{id}/similar."""

    def __init__(
        self,
        request: Request,
        settings: SettingsDep,
        session_id: Annotated[
            str | None,
            Query(
                max_length=128,
                description="A shopper session: its events become anchors and negatives, "
                "after the explicit anchor_ids/negative_ids.",
            ),
        ] = None,
        exclude_owned: Annotated[
            bool,
            Query(description="Leave out products the session put in the cart or bought."),
        ] = False,
    ) -> None:
        self.request, self.settings = request, settings
        self.session_id, self.exclude_owned = session_id, exclude_owned

    def apply(self, req: RerankRequest) -> tuple[RerankRequest, SessionUsed | None]:
        """The request with the session's anchors, and what the session contributed."""
        if self.session_id is None:
            if self.exclude_owned:
                raise InvalidInput("exclude_owned needs a session_id")
            return req, None
        store = session_store(self.request, self.settings)
        implied = session_anchors(
            store.events(self.session_id),
            time.time(),
            half_life_s=self.settings.session_half_life,
        )
        return apply_session(req, self.session_id, implied, self.exclude_owned)

    def run(self, engine: Engine, req: RerankRequest) -> SearchResult:
        """Answer ``req`` with the session's anchors; the answer says what the session added."""
        req, used = self.apply(req)
        return run(engine, req).with_session(used)


SessionQueryDep = Annotated[SessionQuery, Depends(SessionQuery)]
