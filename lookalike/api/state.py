"""What the app serves with: its settings and its engine, one immutable pair swapped in one step.

A blue/green re-index switches models and engine while requests run. Kept as two attributes,
a request could read the new settings and the old engine; kept as one frozen object, every
request sees one pair from start to end (FastAPI resolves :func:`current` once per request,
and the settings and engine dependencies both come from it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from fastapi import FastAPI, Request

from lookalike.engines import Engine
from lookalike.settings import Settings

_swap_lock = threading.Lock()


@dataclass(frozen=True)
class Serving:
    settings: Settings
    engine: Engine


def serving(app: FastAPI) -> Serving:
    """The pair the app serves with now."""
    now: Serving = app.state.serving
    return now


def current(request: Request) -> Serving:
    """The dependency: the pair this request is answered with."""
    return serving(request.app)


def swap(app: FastAPI, new: Serving) -> Serving:
    """Serve with ``new`` from now on (one assignment); the pair it replaces comes back."""
    with _swap_lock:
        old = serving(app)
        app.state.serving = new
    return old
