"""Helpers for the reliability tests (no tests here): workers to kill, a private broker."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest
import redis
from celery import Celery

from lookalike.settings import get_settings
from tests.conftest import ROOT, TF2_MOBILENET

BROKER_DB = 9  # a Redis database of its own: no other test's queue or unacked messages


@contextmanager
def private_broker() -> Iterator[str]:
    """A flushed Redis database 9 held by this test alone; skips when Redis is not running.

    Test runs of several engineers share one Redis: a lock in database 0 makes them take
    turns instead of flushing each other's queues.
    """
    base = get_settings().redis_url.rsplit("/", 1)[0]
    url = f"{base}/{BROKER_DB}"
    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {url} ({exc}); scripts/ensure-redis starts one")
    lock = redis.Redis.from_url(f"{base}/0").lock(
        "lookalike:test-lock:broker-db-9", timeout=900, blocking_timeout=900
    )
    if not lock.acquire():
        pytest.fail("another test run held Redis database 9 for 15 minutes")
    try:
        redis.Redis.from_url(url).flushdb()
        yield url
    finally:
        lock.release()


def producer(url: str) -> Celery:
    """A bare app that only sends tasks by name to ``url``."""
    return Celery("producer", broker=url, backend=url)


class Worker:
    """A Celery worker in its own process group, so kill -9 can take all of it at once."""

    def __init__(self, app: str, queue: str, env: dict[str, str], log: Path, concurrency: int):
        self.log: IO[str] = open(log, "a")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                app,
                "worker",
                "-Q",
                queue,
                f"--concurrency={concurrency}",
                "--loglevel=INFO",
                "--without-mingle",
                "--without-gossip",
            ],  # fmt: skip
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def pool_children(self) -> list[int]:
        """Pids of the prefork pool processes (children of the main worker process)."""
        kids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.proc.pid:
                    kids.append(int(entry.name))
        return kids

    def kill_pool_process(self) -> int:
        kids = self.pool_children()
        assert kids, "the worker has no pool processes"
        os.kill(kids[0], signal.SIGKILL)
        return kids[0]

    def kill_all(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.log.close()


def worker_env(broker: str, data: Path, visibility: int) -> dict[str, str]:
    return dict(
        os.environ,
        REDIS_URL=broker,
        LOOKALIKE_DATA_DIR=str(data),
        LOOKALIKE_IMAGE_MODEL=str(TF2_MOBILENET),
        LOOKALIKE_IMAGE_TENSOR="GlobalPool",
        LOOKALIKE_TEXT_MODEL="none",
        LOOKALIKE_VISIBILITY_TIMEOUT=str(visibility),
        PYTHONUNBUFFERED="1",  # the log must survive kill -9 of the worker
    )


def db_count(data: Path, sql: str = "SELECT count(*) FROM products WHERE deleted = 0") -> int:
    """One number from the engine's SQLite file, read without opening the engine."""
    path = data / "lookalike.db"
    if not path.exists():
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
        return int(conn.execute(sql).fetchone()[0])


def broker_state(url: str) -> str:
    """What Redis holds (queues, unacked messages, the restore mutex): for failure messages."""
    client = redis.Redis.from_url(url)
    parts = []
    for key in sorted(client.keys("*")):
        kind = client.type(key).decode()
        size = {"list": client.llen, "hash": client.hlen, "zset": client.zcard}.get(kind)
        if size is not None and not key.startswith(b"celery-task-meta"):
            parts.append(f"{key.decode()}={size(key)}")
    return ", ".join(parts)


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, describe: Callable[[], str] = str
) -> float:
    """Poll ``check`` every 0.1 s; the seconds it took, or a failure naming ``what``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            pytest.fail(f"timed out after {timeout}s waiting for {what}; {describe()}")
        time.sleep(0.1)
    return time.monotonic() - start
