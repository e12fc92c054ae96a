"""Operational counters shared by every process that ingests: the CLI, the API and Celery workers.

Each ingest batch adds its counts to one Redis hash (``HINCRBY``, one round trip per batch), so
the API can serve the whole fleet's ingest counters at ``/metrics`` whatever process did the
work (a worker has no HTTP port to scrape). Counts are also kept in this process, which the API
serves when Redis cannot be reached. Redis being down never slows or fails an ingest: a failed
push is dropped and pushes pause for a while.

Ranking-quality metrics (precision@k, nDCG) live in :mod:`lookalike.metrics`; the Prometheus
exposition of these counters is :mod:`lookalike.api.routes.metrics`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

INGEST_KEY = "lookalike:telemetry:ingest"  # hash: "<role>|<counter>" -> count
QUEUE_NAME = "lookalike"  # the Celery queue (a Redis list of that name)
RETRY_AFTER_S = 30.0  # after a failed push, the next attempt waits this long
REDIS_TIMEOUT_S = 0.5

# What an ingest counts, in ``/metrics`` order: (counter, help).
INGEST_COUNTERS: dict[str, str] = {
    "products_inserted": "Products written for the first time.",
    "products_updated": "Products whose stored version was replaced.",
    "products_unchanged": "Products skipped because their fingerprint was current.",
    "images_embedded": "Images decoded and embedded.",
    "images_reused": "Images whose vector was reused by content hash.",
    "images_failed": "Images that could not be read or decoded.",
    "records_rejected": "Catalogue records rejected before indexing (invalid).",
}
ROLES = ("cli", "api", "worker")

request_id: ContextVar[str | None] = ContextVar("lookalike_request_id", default=None)


@lru_cache(maxsize=8)
def _redis(url: str) -> Any:
    """One client (and connection pool) per URL and process, with short timeouts."""
    import redis

    return redis.Redis.from_url(
        url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
    )


class IngestMeter:
    """Adds one process's ingest counts to the shared Redis hash (and keeps them locally)."""

    def __init__(self, redis_url: str | None, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown telemetry role {role!r}")
        self.role, self.redis_url = role, redis_url
        self.local: dict[str, int] = dict.fromkeys(INGEST_COUNTERS, 0)
        self._client: Any = None
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def add(self, counts: Mapping[str, int]) -> None:
        """Add ``counts`` (names from :data:`INGEST_COUNTERS`; zeros are skipped)."""
        delta = {k: int(v) for k, v in counts.items() if v}
        unknown = set(delta) - set(INGEST_COUNTERS)
        if unknown:
            raise ValueError(f"unknown ingest counters: {sorted(unknown)}")
        if not delta:
            return
        with self._lock:
            for name, value in delta.items():
                self.local[name] += value
            self._push(delta)

    def _push(self, delta: dict[str, int]) -> None:
        if self.redis_url is None or time.monotonic() < self._paused_until:
            return
        try:
            if self._client is None:
                self._client = _redis(self.redis_url)
            pipe = self._client.pipeline(transaction=False)
            for name, value in delta.items():
                pipe.hincrby(INGEST_KEY, f"{self.role}|{name}", value)
            pipe.execute()
        except Exception as exc:  # noqa: BLE001 - telemetry must never fail an ingest
            self._paused_until = time.monotonic() + RETRY_AFTER_S
            logging.getLogger(__name__).info(
                "ingest counters not pushed to Redis (%s); retrying in %.0f s",
                type(exc).__name__,
                RETRY_AFTER_S,
            )


def batch_counts(report: Any) -> dict[str, int]:
    """The counters of an indexer ``BatchReport`` (duck-typed: the core never imports it)."""
    return {
        "products_inserted": report.inserted,
        "products_updated": report.updated,
        "products_unchanged": report.unchanged,
        "images_embedded": report.embedded_images,
        "images_reused": report.reused_images,
        "images_failed": len(report.image_errors),
    }


def shared_ingest_counts(redis_url: str) -> dict[tuple[str, str], int] | None:
    """Every process's pushed counts by (role, counter); None when Redis does not answer."""
    try:
        raw = _redis(redis_url).hgetall(INGEST_KEY)
    except Exception:  # noqa: BLE001 - the scrape falls back to this process's counts
        return None
    out: dict[tuple[str, str], int] = {}
    for key, value in raw.items():
        role, _, name = key.decode().partition("|")
        if name in INGEST_COUNTERS:
            out[(role, name)] = int(value)
    return out


def queue_depth(redis_url: str, queue: str = QUEUE_NAME) -> int | None:
    """Jobs waiting in the Celery queue (its Redis list); None when Redis does not answer."""
    try:
        return int(_redis(redis_url).llen(queue))
    except Exception:  # noqa: BLE001
        return None


# --- logs -------------------------------------------------------------------------------------

LOG_FORMATS = ("text", "json")
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record logged while it is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and value is not None:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> logging.Handler:
    """One stderr handler on the root logger, text or JSON, carrying request ids."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}")
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_lookalike", False)]:
        root.removeHandler(old)
    handler._lookalike = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "celery"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    return handler
