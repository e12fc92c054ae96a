"""The Celery application: Redis broker, at-least-once delivery, idempotent tasks.

Late acks plus reject-on-worker-lost mean a batch whose worker dies is delivered again;
upserts keyed by product id and fingerprint make the redelivery harmless.
"""

from __future__ import annotations

from celery import Celery

from lookalike.settings import get_settings

TASK_TIME_LIMIT = 3600


def make_celery(redis_url: str | None = None) -> Celery:
    url = redis_url or get_settings().redis_url
    app = Celery("lookalike", broker=url, backend=url, include=["indexer.tasks"])
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=TASK_TIME_LIMIT,
        broker_transport_options={"visibility_timeout": 2 * TASK_TIME_LIMIT},
        result_expires=24 * 3600,
        broker_connection_retry_on_startup=True,
        task_default_queue="lookalike",
    )
    return app


app = make_celery()
