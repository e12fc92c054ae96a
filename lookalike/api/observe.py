"""Every request observed once: a request id, an access log line, and the HTTP metrics.

``Observe`` is a pure ASGI middleware, outermost, so it also sees the answers other middleware
gives (a 413 from the body limit). Requests are labelled by their route *template*
(``/products/{product_id}``), never the raw path, so a scraper's series stay few whatever ids
clients send; a path no route matches is ``<unmatched>``.

The request id is the client's ``X-Request-ID`` when it is a sane token (a load balancer's or
a caller's), else a new one; it is returned in the response's ``X-Request-ID`` and carried by
every log record written while the request is handled (:mod:`lookalike.telemetry`).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lookalike.telemetry import request_id

access_log = logging.getLogger("lookalike.access")

REQUEST_ID_HEADER = b"x-request-id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # nothing that could forge a log line
UNMATCHED = "<unmatched>"
# Seconds; searches answer in milliseconds, clustering or a map in seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class HttpMetrics:
    """The request counter and latency histogram, in the app's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("method", "route", "status")
        self.requests = Counter(
            "lookalike_http_requests",
            "HTTP requests answered, by route template and status.",
            labels,
            registry=registry,
        )
        self.latency = Histogram(
            "lookalike_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and status.",
            labels,
            buckets=BUCKETS,
            registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route, str(status)).observe(seconds)


def incoming_request_id(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` if it is a sane token, else a fresh one."""
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            given = value.decode("latin-1").strip()
            if _SANE_ID.match(given):
                return given
            break
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class Observe:
    """Request id in and out, one access log line and the HTTP metrics per request."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = incoming_request_id(scope)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [h for h in message.get("headers", []) if h[0] != REQUEST_ID_HEADER]
                headers.append((REQUEST_ID_HEADER, rid.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        started_response = False

        async def send_tracked(message: Message) -> None:
            nonlocal started_response
            started_response = started_response or message["type"] == "http.response.start"
            await send_with_id(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as exc:
            # The app's 500 answer is sent from outside every middleware, where the id would
            # be lost: answer here with the same handler, then let the server see the error.
            handler = getattr(scope.get("app"), "exception_handlers", {}).get(Exception)
            if handler is not None and not started_response:
                response = await handler(Request(scope), exc)
                await response(scope, receive, send_tracked)
            raise
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            method = scope.get("method", "GET")
            self.metrics.observe(method, route, status, seconds)
            client = scope.get("client")
            access_log.info(
                "%s %s %s %d %.1fms",
                client[0] if client else "-",
                method,
                scope.get("path", ""),
                status,
                seconds * 1000,
                extra={
                    "method": method,
                    "path": scope.get("path", ""),
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "client": client[0] if client else None,
                },
            )
            request_id.reset(token)
