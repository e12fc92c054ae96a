"""One error tree for the whole product.

Adapters (engines, vectorizers, image loaders) translate vendor exceptions into these. The
classes say what went wrong and whether trying again can help (``EngineUnavailable``, as
httpx separates transport errors); the API maps them to HTTP statuses in one place
(``lookalike/api/errors.py``), so nothing here knows about HTTP.
"""

from __future__ import annotations


class LookalikeError(Exception):
    """Base of every error Lookalike raises on purpose."""

    code = "error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigError(LookalikeError):
    """Settings are invalid, or an optional package is missing."""

    code = "config_error"


class MissingExtra(ConfigError):
    """An optional dependency is not installed."""

    code = "missing_extra"

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed: install the {extra!r} extra "
            f"(pip install 'lookalike[{extra}]')",
            package=package,
            extra=extra,
        )


class InvalidInput(LookalikeError):
    """A request or record is malformed."""

    code = "invalid_input"


class InvalidFilter(InvalidInput):
    """A filter expression cannot be parsed or names an unknown field."""

    code = "invalid_filter"


class NotFound(LookalikeError):
    """A product (e.g. an anchor) does not exist."""

    code = "not_found"


class ImageError(LookalikeError):
    """An image could not be loaded or decoded; recorded per image, never fatal to a batch."""

    code = "image_error"


class ModelError(LookalikeError):
    """A model could not be loaded or run."""

    code = "model_error"


class EngineError(LookalikeError):
    """The search engine failed (storage, index, a rejected write, a dimension clash).

    Retrying the same call does not help; see ``EngineUnavailable`` for the errors that do.
    """

    code = "engine_error"


class EngineUnavailable(EngineError):
    """A dependency is unreachable or busy for now (a cluster, a lock, the job queue).

    The transient branch of the tree: the same call may succeed later, so Celery retries
    these, and only these.
    """


class Unauthorized(LookalikeError):
    """No API key, or one that is not configured."""

    code = "unauthorized"


class Forbidden(LookalikeError):
    """A valid key without the scope the endpoint needs (a read key on a write endpoint)."""

    code = "forbidden"


class Conflict(LookalikeError):
    """The same kind of job is already running."""

    code = "conflict"


class PayloadTooLarge(LookalikeError):
    """The request body is larger than ``LOOKALIKE_MAX_BODY_BYTES``."""

    code = "payload_too_large"


class RateLimited(LookalikeError):
    """Too many requests or events in a window; ``details.retry_after`` says when to retry."""

    code = "rate_limited"


class DeadLettered(LookalikeError):
    """A task crashed its worker on every delivery and was set aside without running."""

    code = "dead_lettered"


# Errors the caller caused (a bad request or record, an unknown id, a busy job slot): the CLI
# exits with 2 for these and 1 for the rest.
CALLER_ERRORS: tuple[type[LookalikeError], ...] = (
    InvalidInput,
    NotFound,
    ImageError,
    Unauthorized,
    Forbidden,
    Conflict,
    PayloadTooLarge,
    RateLimited,
)
