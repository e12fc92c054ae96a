"""API keys: who may write, who may read, and refusing weak secrets outside development.

How a router uses it::

    from lookalike.api.security import WRITE_RESPONSES, WriteAccess

    router = APIRouter(prefix="/admin", dependencies=[WriteAccess], responses=WRITE_RESPONSES)
    # or per route:
    @router.post("/x", dependencies=[WriteAccess], responses=WRITE_RESPONSES)

``WriteAccess`` answers 401 (missing or unknown key) or 403 (a read-only key) in the one JSON
error shape before the route runs. ``ReadAccess`` does the same for read routes, and lets
everyone through unless ``LOOKALIKE_READ_REQUIRES_KEY`` is set. Keys travel in
``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` and are compared in constant time.

Write keys come from ``LOOKALIKE_API_KEYS``, read-only keys from ``LOOKALIKE_READ_KEYS``
(comma-separated; a write key also reads). In development (``LOOKALIKE_ENV=development``)
with no write key configured, writes are refused unless ``LOOKALIKE_ALLOW_ANONYMOUS_WRITES``
is set; outside development :func:`check_security` refuses to start with no write key, a
short or well-known key, or anonymous writes.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from lookalike.api.schemas import ErrorOut
from lookalike.api.state import Serving, current
from lookalike.errors import ConfigError, Forbidden, Unauthorized
from lookalike.settings import Settings

MIN_KEY_CHARS = 16
OPEN_PATHS = frozenset({"/health"})  # load-balancer probes carry no key
# Keys anyone would try first; refused outside development whatever their length.
WEAK_KEYS = frozenset(
    {
        "changeme",
        "change-me",
        "secret",
        "password",
        "admin",
        "test",
        "dev",
        "development",
        "default",
        "lookalike",
        "apikey",
        "api-key",
        "token",
        "letmein",
        "changeme-please-change-me",
        "0123456789abcdef",
        "00000000000000000000000000000000",
    }
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``scope`` is ``write`` (also reads), ``read`` or ``anonymous``."""

    scope: str


_bearer = HTTPBearer(auto_error=False, description="An API key as a bearer token.")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")


def _matches(key: str, keys: tuple[str, ...]) -> bool:
    """Constant-time membership: every configured key is compared, none short-circuits."""
    given = key.encode("utf-8", "surrogatepass")
    found = False
    for candidate in keys:
        found |= hmac.compare_digest(given, candidate.encode("utf-8"))
    return found


def weak_key_reason(key: str) -> str | None:
    """Why a key is unfit for production, or None."""
    if key.lower() in WEAK_KEYS:
        return "a well-known default"
    if len(key) < MIN_KEY_CHARS:
        return f"shorter than {MIN_KEY_CHARS} characters"
    if len(set(key)) < 4:
        return "too few distinct characters"
    return None


def check_security(settings: Settings) -> None:
    """Refuse to start outside development with no write key, a weak key or open writes."""
    if settings.env == "development":
        return
    write, read = settings.api_keys, settings.read_keys
    if not write:
        raise ConfigError(
            f"LOOKALIKE_ENV={settings.env}: set LOOKALIKE_API_KEYS (write/admin keys) "
            "before starting the API outside development"
        )
    if settings.allow_anonymous_writes:
        raise ConfigError(
            "LOOKALIKE_ALLOW_ANONYMOUS_WRITES is for development only "
            f"(LOOKALIKE_ENV={settings.env})"
        )
    for name, keys in (("LOOKALIKE_API_KEYS", write), ("LOOKALIKE_READ_KEYS", read)):
        for index, key in enumerate(keys):
            reason = weak_key_reason(key)
            if reason:
                raise ConfigError(
                    f"{name}: key #{index + 1} is {reason}; use a random key "
                    "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
                )


def _presented_key(bearer: HTTPAuthorizationCredentials | None, header: str | None) -> str | None:
    if header:
        return header
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    return None


def _principal(settings: Settings, key: str | None) -> Principal:
    if key is None:
        return Principal("anonymous")
    if _matches(key, settings.api_keys):
        return Principal("write")
    if _matches(key, settings.read_keys):
        return Principal("read")
    raise Unauthorized("unknown API key")


def caller(
    now: Annotated[Serving, Depends(current)],
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    header: str | None = Depends(_header),
) -> Principal:
    """Who presents which key (resolved once per request; both checks below read it)."""
    return _principal(now.settings, _presented_key(bearer, header))


def require_write(
    now: Annotated[Serving, Depends(current)],
    principal: Annotated[Principal, Depends(caller)],
) -> Principal:
    """The caller holds a write key (or anonymous writes are allowed in development)."""
    settings = now.settings
    if principal.scope == "write":
        return principal
    if principal.scope == "read":
        raise Forbidden("this API key may only read")
    if settings.env == "development" and settings.allow_anonymous_writes:
        return principal
    raise Unauthorized("this endpoint needs an API key (Authorization: Bearer or X-API-Key)")


def require_read(
    request: Request,
    now: Annotated[Serving, Depends(current)],
    principal: Annotated[Principal, Depends(caller)],
) -> Principal:
    """Anyone may read unless LOOKALIKE_READ_REQUIRES_KEY; a presented key must be valid."""
    if request.url.path in OPEN_PATHS:
        return principal
    if principal.scope == "anonymous" and now.settings.read_requires_key:
        raise Unauthorized("this endpoint needs an API key (Authorization: Bearer or X-API-Key)")
    return principal


def holds_write_key(request: Request) -> bool:
    """Whether the caller presented a write key: only they see the server's local paths."""
    header = request.headers.get("x-api-key")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    key = header or (token.strip() if scheme.lower() == "bearer" else "")
    return bool(key) and _matches(key, current(request).settings.api_keys)


WriteAccess: Any = Depends(require_write)
ReadAccess: Any = Depends(require_read)

_ERROR = {"model": ErrorOut}
# Declared on keyed routes so the OpenAPI schema lists every answer they can give.
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {**_ERROR, "description": "Missing or unknown API key."},
    403: {**_ERROR, "description": "The key may only read."},
}
READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {**_ERROR, "description": "Missing (when required) or unknown API key."},
}
