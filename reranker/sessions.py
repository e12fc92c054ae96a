"""A shopper's session as anchors of a request: explicit anchors first, the session's after."""

from __future__ import annotations

from dataclasses import replace

from lookalike.errors import InvalidInput
from lookalike.sessions import SessionAnchor, SessionAnchors
from reranker.request import MAX_ANCHORS, Anchor, RerankRequest
from reranker.results import SessionAnchorUsed, SessionUsed


def with_session(req: RerankRequest, implied: SessionAnchors) -> RerankRequest:
    """``req`` with the session's anchors and negatives added after its own.

    Explicit anchors and negatives keep their weights and win over the session for the same
    product; the session fills what is left of :data:`MAX_ANCHORS`, strongest first (the
    session already orders them so). A session that implies nothing leaves ``req`` as it is,
    so a request that names neither anchors nor a session is refused as before.
    """
    named = {a.id for a in req.anchors} | {n.id for n in req.negatives}
    room = MAX_ANCHORS - len(named)
    if room <= 0:
        return req
    ranked = sorted(
        [(a.weight, a.id, True) for a in implied.anchors if a.id not in named]
        + [(n.weight, n.id, False) for n in implied.negatives if n.id not in named],
        key=lambda t: (-t[0], t[1]),
    )[:room]
    anchors = req.anchors + tuple(Anchor(pid, w) for w, pid, pos in ranked if pos)
    negatives = req.negatives + tuple(Anchor(pid, w) for w, pid, pos in ranked if not pos)
    if not anchors and req.query is None and not req.query_vectors:
        raise InvalidInput("the session implies no anchors yet (only dismissals or no events)")
    return replace(req, anchors=anchors, negatives=negatives)


def apply_session(
    req: RerankRequest, session_id: str, implied: SessionAnchors, exclude_owned: bool = False
) -> tuple[RerankRequest, SessionUsed]:
    """``req`` with the session's anchors (and owned products left out when asked), and the
    answer's ``session`` block: which events made which of the anchors the request uses."""
    out = with_session(req, implied)
    if exclude_owned:
        out = replace(out, exclude=tuple(sorted(set(out.exclude) | implied.owned)))
    used = {a.id for a in out.anchors} | {n.id for n in out.negatives}
    return out, SessionUsed(
        id=session_id,
        anchors=[_anchor_used(a) for a in implied.anchors if a.id in used],
        negatives=[_anchor_used(n) for n in implied.negatives if n.id in used],
        excluded=sorted(implied.owned) if exclude_owned else [],
    )


def _anchor_used(anchor: SessionAnchor) -> SessionAnchorUsed:
    return SessionAnchorUsed(
        id=anchor.id, weight=anchor.weight, events=[e.model_dump() for e in anchor.events]
    )
