"""The live OpenSearch node for tests, reached through a connection that checks the spec.

``make test`` starts a real local node (scripts/opensearch) and sets ``OPENSEARCH_URL``; every
request the adapter sends it is first validated against the official API specification
(../shared/opensearch), and every answer against the spec's response schema, so the live
suites check both what the node does and that the bodies are well-formed.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from opensearchpy import OpenSearch, Urllib3HttpConnection

from tests.opensearch_spec import (
    SPEC_PATH,
    SpecViolation,
    parse_body,
    validate_request,
    validate_response,
)

Request = tuple[str, str, dict[str, Any], Any]


def opensearch_url() -> str:
    """The live node's URL; a clear skip without one (``make test`` always sets it)."""
    url = os.environ.get("OPENSEARCH_URL")
    if not url:
        pytest.skip("needs a live OpenSearch node: `make opensearch`, then set OPENSEARCH_URL")
    return url.rstrip("/")


def unique_prefix() -> str:
    """A fresh index prefix, so tests never see each other's documents."""
    return f"lookalike-test-{uuid.uuid4().hex[:12]}"


class SpecCheckingConnection(Urllib3HttpConnection):
    """Validates each request (and, where the spec has one, its answer) around a real call."""

    requests: list[Request] = []
    check_spec: bool = True

    def perform_request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        params: Any = None,
        body: bytes | None = None,
        timeout: Any = None,
        ignore: Any = (),
        headers: Any = None,
    ) -> tuple[int, Any, str]:
        path = url.split("?")[0]
        parsed = parse_body(path, body)
        if self.check_spec and SPEC_PATH.is_file():
            validate_request(method, path, parsed)
        self.requests.append((method, path, dict(params or {}), parsed))
        status, resp_headers, raw = super().perform_request(
            method, url, params, body, timeout, ignore, headers
        )
        if self.check_spec and SPEC_PATH.is_file() and raw and 200 <= status < 300:
            import json

            validate_response(method, path, status, json.loads(raw))
        return status, resp_headers, raw


def live_client(url: str | None = None, check_spec: bool = True) -> Any:
    """A client for the live node whose connection records and validates every request.

    ``client.lookalike_requests`` is the list of ``(method, path, params, body)`` sent."""
    requests: list[Request] = []
    conn = type(
        "BoundSpecCheckingConnection",
        (SpecCheckingConnection,),
        {"requests": requests, "check_spec": check_spec},
    )
    client = OpenSearch(hosts=[url or opensearch_url()], connection_class=conn, timeout=30)
    client.lookalike_requests = requests  # type: ignore[attr-defined]
    return client


__all__ = ["SpecViolation", "live_client", "opensearch_url", "unique_prefix"]
