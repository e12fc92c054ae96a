"""Shopper sessions: events kept in Redis for a while, turned into weighted anchors.

A storefront posts what a shopper did (views, likes, cart, purchases, dismissals); searches
that name the session get anchors and negatives implied by those events, decayed by age.
Nothing but Redis keeps a session, and only until its TTL passes or it is forgotten.
"""

from lookalike.sessions.anchors import SessionAnchor, SessionAnchors, session_anchors
from lookalike.sessions.events import EVENT_TYPES, Event, EventIn, check_known, check_session_id
from lookalike.sessions.store import SessionStore

__all__ = [
    "EVENT_TYPES",
    "Event",
    "EventIn",
    "SessionAnchor",
    "SessionAnchors",
    "SessionStore",
    "check_known",
    "check_session_id",
    "session_anchors",
]
