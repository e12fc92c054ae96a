"""Request-size limits enforced before the app reads a body.

``BodyLimit`` is a pure ASGI middleware: it counts the bytes the app actually receives and
stops at the limit, so a missing or lying ``Content-Length`` (or a chunked body) cannot make
the server buffer more than ``max_bytes``. An honest ``Content-Length`` above the limit is
refused before a single body byte is read.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lookalike.errors import PayloadTooLarge

# Static limits, declared in the OpenAPI schema (so clients and fuzzers know them).
MAX_INGEST_RECORDS = 1000
MAX_DELETE_IDS = 1000


class _Stop(Exception):
    """Raised from ``receive`` once the body passes the limit: the app stops reading."""


async def _send_413(send: Send, max_bytes: int) -> None:
    exc = PayloadTooLarge(f"request body larger than {max_bytes} bytes", limit=max_bytes)
    body = json.dumps(
        {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """413 for bodies over ``max_bytes``, counted as they stream in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _send_413(send, self.max_bytes)
            return
        state: dict[str, Any] = {"received": 0, "exceeded": False, "started": False}

        async def limited_receive() -> Message:
            if state["exceeded"]:
                raise _Stop
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes:
                    state["exceeded"] = True
                    raise _Stop
            return message

        async def guarded_send(message: Message) -> None:
            if state["exceeded"] and not state["started"]:
                return  # whatever the app answers to a cut-off body, the answer is 413
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not state["exceeded"]:
                raise
        if state["exceeded"] and not state["started"]:
            await _send_413(send, self.max_bytes)
