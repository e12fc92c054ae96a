"""One error tree for the whole product.

Adapters (engines, vectorizers, image loaders) translate vendor exceptions into these,
and the API maps each class to one HTTP status and one JSON error shape.
"""

from __future__ import annotations


class LookalikeError(Exception):
    """Base of every error Lookalike raises on purpose."""

    code = "error"
    status = 500

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigError(LookalikeError):
    """Settings are invalid, or an optional package is missing."""

    code = "config_error"
    status = 500


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
    status = 422


class InvalidFilter(InvalidInput):
    """A filter expression cannot be parsed or names an unknown field."""

    code = "invalid_filter"


class NotFound(LookalikeError):
    """A product (e.g. an anchor) does not exist."""

    code = "not_found"
    status = 404


class ImageError(LookalikeError):
    """An image could not be loaded or decoded; recorded per image, never fatal to a batch."""

    code = "image_error"
    status = 422


class ModelError(LookalikeError):
    """A model could not be loaded or run."""

    code = "model_error"
    status = 500


class EngineError(LookalikeError):
    """The search engine failed (storage, index, connection)."""

    code = "engine_error"
    status = 503


class Unauthorized(LookalikeError):
    """No API key, or one that is not configured."""

    code = "unauthorized"
    status = 401


class Forbidden(LookalikeError):
    """A valid key without the scope the endpoint needs (a read key on a write endpoint)."""

    code = "forbidden"
    status = 403


class Conflict(LookalikeError):
    """The same kind of job is already running."""

    code = "conflict"
    status = 409


class PayloadTooLarge(LookalikeError):
    """The request body is larger than ``LOOKALIKE_MAX_BODY_BYTES``."""

    code = "payload_too_large"
    status = 413


class DeadLettered(LookalikeError):
    """A task crashed its worker on every delivery and was set aside without running."""

    code = "dead_lettered"
    status = 500
