"""The Celery application: Redis broker, at-least-once delivery, idempotent tasks.

Late acks plus reject-on-worker-lost mean a batch whose pool process dies is delivered again
at once; a message held by a worker that died whole (kill -9, lost machine) is restored by
another worker's sweep once it is older than the visibility timeout. Upserts keyed by
product id and fingerprint make every redelivery harmless, and tasks that crash their
worker on every delivery are dead-lettered (indexer/deadletter.py).
"""

from __future__ import annotations

from celery import Celery

from lookalike.settings import get_settings

TASK_TIME_LIMIT = 3600
RESTORE_SWEEP_S = 5  # kombu's default sweep is every 10 s x throttle 10 = 100 s


def make_celery(redis_url: str | None = None, visibility_timeout: int | None = None) -> Celery:
    """The app; a job's hard time limit stays well inside the visibility timeout.

    A job still running when its visibility timeout expires would be delivered to a second
    worker while the first finishes: harmless (idempotent) but wasted work.
    """
    settings = get_settings()
    url = redis_url or settings.redis_url
    visibility = visibility_timeout or settings.visibility_timeout
    time_limit = max(1, min(TASK_TIME_LIMIT, visibility // 2))
    app = Celery("lookalike", broker=url, backend=url, include=["indexer.tasks"])
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A job killed by the hard time limit is requeued, not acked (exceptions still fail
        # it); repeated timeouts end in the dead-letter list like any crash.
        task_acks_on_failure_or_timeout=False,
        worker_prefetch_multiplier=1,
        task_time_limit=time_limit,
        worker_max_memory_per_child=2_000_000,  # KiB: recycle a pool process that grew to 2 GB
        broker_transport_options={
            "visibility_timeout": visibility,
            "unacked_restore_interval": RESTORE_SWEEP_S,
            "unacked_restore_throttle": 1,
            # A worker killed inside a sweep leaves the sweep mutex behind (default 300 s).
            "unacked_mutex_expire": 30,
        },
        result_expires=24 * 3600,
        broker_connection_retry_on_startup=True,
        task_default_queue="lookalike",
        # Task events for monitors (Flower, `celery events`): sent, started, succeeded, failed.
        worker_send_task_events=True,
        task_send_sent_event=True,
    )
    return app


app = make_celery()
