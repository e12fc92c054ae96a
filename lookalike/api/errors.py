"""One JSON error shape for every error the API returns.

``{"error": {"code": str, "message": str, "details": object}}`` — for Lookalike errors,
request validation errors, unknown routes and unexpected failures alike.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lookalike import errors as err
from lookalike.api.schemas import ErrorOut
from lookalike.errors import LookalikeError

log = logging.getLogger("lookalike.api")

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}

# The one place error classes meet HTTP: the most specific class in an error's MRO decides.
STATUS_OF: dict[type[LookalikeError], int] = {
    err.InvalidInput: 422,
    err.NotFound: 404,
    err.ImageError: 422,
    err.EngineError: 503,
    err.Unauthorized: 401,
    err.Forbidden: 403,
    err.Conflict: 409,
    err.PayloadTooLarge: 413,
    err.RateLimited: 429,
}


def status_of(exc: LookalikeError) -> int:
    """The HTTP status of a Lookalike error (500 for anything not listed)."""
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 500


# Declared on the app, so every operation's OpenAPI entry lists the one error shape (and
# FastAPI's own validation-error schema, which the API never sends, is left out).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorOut, "description": "A client error, in the one error shape."},
    "5XX": {"model": ErrorOut, "description": "A server error, in the one error shape."},
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LookalikeError)
    async def _lookalike(request: Request, exc: LookalikeError) -> JSONResponse:
        headers = None
        if isinstance(exc, err.RateLimited) and "retry_after" in exc.details:
            headers = {"Retry-After": str(exc.details["retry_after"])}
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details), status_of(exc), headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": [str(p) for p in e.get("loc", ())], "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        message = "; ".join(f"{'.'.join(p['loc'])}: {p['message']}" for p in problems)
        return JSONResponse(
            error_body("invalid_input", message or "invalid request", {"errors": problems}), 422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse(error_body("internal_error", "internal server error"), 500)
