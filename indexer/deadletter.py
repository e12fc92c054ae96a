"""Poison messages: count deliveries per task in Redis and dead-letter the third one.

With late acks a task that kills its worker (segfault, OOM, ``os._exit``) is delivered
again and again. Each delivery increments ``lookalike:deliveries:<task id>:<retry>``
before the task body runs; a normal return or exception deletes the counter, so it only
grows through crashes. The delivery that reaches :data:`MAX_DELIVERIES` is not run: it is
recorded in the ``lookalike:dead-letters`` list and fails with :class:`DeadLettered`, which
acks it so the rest of the queue drains. ``python -m indexer.deadletter`` lists the records.
"""

from __future__ import annotations

import json
import sys
import time
from functools import lru_cache
from typing import Any

import redis
from celery import Task

from lookalike.errors import LookalikeError

MAX_DELIVERIES = 3
DEAD_LETTERS_KEY = "lookalike:dead-letters"
COUNTER_PREFIX = "lookalike:deliveries:"
COUNTER_TTL = 7 * 24 * 3600


class DeadLettered(LookalikeError):
    """A task crashed its worker on every delivery and was set aside without running."""

    code = "dead_lettered"
    status = 500


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def admit(url: str, task_id: str, retry: int, name: str, args: Any) -> int:
    """Count this delivery; raise :class:`DeadLettered` (after recording it) on the last one."""
    key = f"{COUNTER_PREFIX}{task_id}:{retry}"
    client = _client(url)
    pipe = client.pipeline()
    pipe.incr(key)
    pipe.expire(key, COUNTER_TTL)
    deliveries = int(pipe.execute()[0])
    if deliveries < MAX_DELIVERIES:
        return deliveries
    record = {
        "task_id": task_id,
        "task": name,
        "retry": retry,
        "deliveries": deliveries,
        "args": args,
        "at": time.time(),
    }
    client.rpush(DEAD_LETTERS_KEY, json.dumps(record, default=str))
    client.delete(key)
    raise DeadLettered(
        f"task {task_id} ({name}) crashed its worker {deliveries - 1} times: dead-lettered",
        task_id=task_id,
    )


def finished(url: str, task_id: str, retry: int) -> None:
    """The task body returned or raised: forget its crash count."""
    _client(url).delete(f"{COUNTER_PREFIX}{task_id}:{retry}")


def dead_letters(url: str, limit: int = 100) -> list[dict[str, Any]]:
    """The oldest ``limit`` dead-letter records."""
    raw = _client(url).lrange(DEAD_LETTERS_KEY, 0, limit - 1)
    return [json.loads(item) for item in raw]


class GuardedTask(Task):  # type: ignore[misc]
    """A Celery task base that dead-letters messages which keep crashing their worker."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        if request.called_directly or request.id is None:  # eager/direct call: no broker
            return super().__call__(*args, **kwargs)
        url = str(self.app.conf.broker_url)
        retry = int(request.retries or 0)
        admit(url, request.id, retry, self.name, args)
        try:
            return super().__call__(*args, **kwargs)
        finally:
            finished(url, request.id, retry)


def main(argv: list[str] | None = None) -> int:
    """Print dead-letter records as JSON lines (``python -m indexer.deadletter [REDIS_URL]``)."""
    from lookalike.settings import Settings

    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else Settings().redis_url
    for record in dead_letters(url, limit=10_000):
        print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
