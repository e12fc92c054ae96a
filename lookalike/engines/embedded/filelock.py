"""A cross-process exclusive lock on a file (fcntl), with a timeout.

tantivy allows a single IndexWriter per index across all processes; a second one fails
with LockBusy. Every writer of the keyword index therefore holds this lock around its batch.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

from lookalike.errors import EngineUnavailable


class FileLock:
    """Re-entrant within a thread, exclusive across threads and processes."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> FileLock:
        if not self._thread_lock.acquire(timeout=self.timeout):
            raise EngineUnavailable(f"timed out waiting for {self.path}")
        if self._depth == 0:
            try:
                self._fd = self._acquire()
            except BaseException:
                self._thread_lock.release()
                raise
        self._depth += 1
        return self

    def _acquire(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise EngineUnavailable(
                        f"timed out after {self.timeout:.0f}s waiting for the lock {self.path}"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        self._thread_lock.release()
