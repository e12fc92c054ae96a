"""opensearch-py exceptions translated into the Lookalike error tree."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from lookalike.errors import (
    EngineError,
    EngineUnavailable,
    InvalidInput,
    LookalikeError,
    MissingExtra,
)

# Statuses worth retrying: too many requests, bad gateway, unavailable, gateway timeout.
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})


def require_client() -> None:
    """Fail with the install hint when the ``opensearch`` extra is missing."""
    try:
        import opensearchpy  # noqa: F401
    except ImportError as exc:
        raise MissingExtra("opensearch-py", "opensearch") from exc


@contextmanager
def translated(action: str) -> Iterator[None]:
    """Run an OpenSearch call; vendor errors become EngineError (or InvalidInput on 400),
    EngineUnavailable when the cluster is unreachable or overloaded (worth a retry)."""
    from opensearchpy import exceptions as osx

    try:
        yield
    except LookalikeError:
        raise
    except osx.ConnectionError as exc:
        raise EngineUnavailable(
            f"OpenSearch unreachable during {action}: {exc}", action=action
        ) from exc
    except osx.TransportError as exc:
        status = exc.status_code if isinstance(exc.status_code, int) else 503
        detail = {"action": action, "status": status, "reason": str(exc.error)}
        if status == 400:
            raise InvalidInput(f"OpenSearch rejected {action}: {exc.error}", **detail) from exc
        failure = EngineUnavailable if status in TRANSIENT_STATUSES else EngineError
        raise failure(f"OpenSearch {action} failed ({status}): {exc.error}", **detail) from exc
