"""Poison messages: count deliveries per task in Redis and dead-letter the third one.

With late acks a task that kills its worker (segfault, OOM, ``os._exit``) is delivered
again and again. Each delivery increments ``lookalike:deliveries:<task id>:<retry>``
before the task body runs; a normal return or exception deletes the counter, so it only
grows through crashes. The delivery that reaches :data:`MAX_DELIVERIES` is not run: it is
recorded in the ``lookalike:dead-letters`` list and fails with :class:`DeadLettered`, which
acks it so the rest of the queue drains. ``python -m indexer.deadletter`` lists the records;
``--replay`` sends them again once the cause is fixed.
"""

from __future__ import annotations

import json
import sys
import time
from functools import lru_cache
from typing import Any

import redis
from celery import Celery, Task

from lookalike.errors import DeadLettered

MAX_DELIVERIES = 3
DEAD_LETTERS_KEY = "lookalike:dead-letters"
COUNTER_PREFIX = "lookalike:deliveries:"
COUNTER_TTL = 7 * 24 * 3600


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def admit(
    url: str, task_id: str, retry: int, name: str, args: Any, queue: str | None = None
) -> int:
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
        "queue": queue,
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


def replay(url: str, app: Celery, limit: int = 10_000) -> list[str]:
    """Send dead letters again as new tasks (after the bug is fixed); their new task ids.

    Each record leaves the list as it is re-sent, so a replay interrupted midway loses none.
    """
    client = _client(url)
    sent = []
    for _ in range(limit):
        raw = client.lindex(DEAD_LETTERS_KEY, 0)
        if not isinstance(raw, bytes):  # empty list (or an unexpected client setup)
            break
        record = json.loads(raw)
        result = app.send_task(record["task"], args=record["args"], queue=record.get("queue"))
        client.lrem(DEAD_LETTERS_KEY, 1, raw.decode())
        sent.append(str(result.id))
    return sent


class GuardedTask(Task):  # type: ignore[misc]
    """A Celery task base that dead-letters messages which keep crashing their worker."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        if request.called_directly or request.id is None:  # eager/direct call: no broker
            return super().__call__(*args, **kwargs)
        url = str(self.app.conf.broker_url)
        retry = int(request.retries or 0)
        queue = (request.delivery_info or {}).get("routing_key")
        admit(url, request.id, retry, self.name, args, queue)
        try:
            return super().__call__(*args, **kwargs)
        finally:
            finished(url, request.id, retry)


def main(argv: list[str] | None = None) -> int:
    """``python -m indexer.deadletter [--replay] [REDIS_URL]``: list (JSON lines) or replay."""
    from lookalike.settings import Settings

    args = sys.argv[1:] if argv is None else list(argv)
    do_replay = "--replay" in args
    args = [a for a in args if a != "--replay"]
    url = args[0] if args else Settings().redis_url
    if do_replay:
        from indexer.celery_app import make_celery

        for task_id in replay(url, make_celery(url)):
            print(task_id)
        return 0
    for record in dead_letters(url, limit=10_000):
        print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
