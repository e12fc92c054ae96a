"""Events to anchors: what a shopper did, weighed by kind and faded by age.

Each event adds ``weight[type] * 0.5 ** (age / half_life)`` to its product; products with a
positive sum are anchors, with a negative sum negatives (a dismissal outweighs a glance).
Defaults, chosen so that one deliberate act outweighs several glances and a dismissal
pushes a product away about as firmly as a like pulls it closer:

==============  ======  =======================================================
event           weight  why
==============  ======  =======================================================
``view``        1       a glance: weak, but many views of one product add up
``like``        3       an explicit "more like this"
``add_to_cart`` 4       the strongest taste signal short of buying
``purchase``    2       they have it: the taste holds, the product is done with
``dismiss``     -3      an explicit "not this": a negative anchor
==============  ======  =======================================================

The half-life (``LOOKALIKE_SESSION_HALF_LIFE``, 30 minutes by default) lets a session follow
a shopper whose taste moves on. Products in the cart or bought are reported as ``owned``, so
a search can leave them out of its results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lookalike.sessions.events import Event

EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "like": 3.0,
    "add_to_cart": 4.0,
    "purchase": 2.0,
    "dismiss": -3.0,
}
OWNED_EVENTS = frozenset({"add_to_cart", "purchase"})
MIN_WEIGHT = 1e-3  # a faded product stops counting


@dataclass(frozen=True)
class SessionAnchor:
    """A product the session points to (or away from), with the events that made it."""

    id: str
    weight: float  # > 0; for a negative, the strength it pushes away with
    events: tuple[Event, ...]


@dataclass(frozen=True)
class SessionAnchors:
    anchors: tuple[SessionAnchor, ...] = ()
    negatives: tuple[SessionAnchor, ...] = ()
    owned: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.anchors or self.negatives)


def session_anchors(
    events: Sequence[Event],
    now: float,
    *,
    half_life_s: float,
    weights: Mapping[str, float] | None = None,
    limit: int = 20,
) -> SessionAnchors:
    """The ``limit`` strongest anchors and negatives the events imply at time ``now``."""
    table = {**EVENT_WEIGHTS, **(weights or {})}
    total: dict[str, float] = {}
    made_by: dict[str, list[Event]] = {}
    for event in events:
        age = max(0.0, now - event.at)
        total[event.product_id] = total.get(event.product_id, 0.0) + table[event.type] * 0.5 ** (
            age / half_life_s
        )
        made_by.setdefault(event.product_id, []).append(event)
    ranked = sorted(
        (pid for pid, w in total.items() if abs(w) >= MIN_WEIGHT),
        key=lambda pid: (-abs(total[pid]), pid),
    )[:limit]
    anchors = [
        SessionAnchor(p, round(total[p], 6), tuple(made_by[p])) for p in ranked if total[p] > 0
    ]
    negatives = [
        SessionAnchor(p, round(-total[p], 6), tuple(made_by[p])) for p in ranked if total[p] < 0
    ]
    owned = frozenset(e.product_id for e in events if e.type in OWNED_EVENTS)
    return SessionAnchors(tuple(anchors), tuple(negatives), owned)
