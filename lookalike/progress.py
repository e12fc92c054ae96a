"""Progress of long jobs, told to whoever watches: a bar in the CLI, ``done``/``total`` in an
HTTP job's state, nothing in a test.

Library code (indexing, re-indexing, clustering, the map, gap filling) takes a
:class:`Progress` and calls :meth:`~Progress.stage` when a step with a known size begins and
:meth:`~Progress.advance` as units are done; it never knows how progress is shown.
"""

from __future__ import annotations

import threading


class Progress:
    """Counts units done in the current stage; the base class only keeps the numbers."""

    def __init__(self) -> None:
        self.stage_name = ""
        self.done = 0
        self.total: int | None = None
        self._lock = threading.Lock()

    def stage(self, name: str, total: int | None) -> None:
        """A new step begins: ``total`` units (None: unknown)."""
        with self._lock:
            self.stage_name, self.done, self.total = name, 0, total
        self.on_stage(name, total)

    def advance(self, n: int = 1) -> None:
        """``n`` more units of the current stage are done."""
        with self._lock:
            self.done += n
        self.on_advance(n)

    def finish(self) -> None:
        """The job is over (a bar is closed; its total becomes what was done)."""
        self.on_finish()

    def on_stage(self, name: str, total: int | None) -> None:  # noqa: B027 - optional hook
        pass

    def on_advance(self, n: int) -> None:  # noqa: B027 - optional hook
        pass

    def on_finish(self) -> None:  # noqa: B027 - optional hook
        pass

    def snapshot(self) -> dict[str, object]:
        """What an HTTP job shows: the stage, units done and the total (None when unknown)."""
        with self._lock:
            return {"stage": self.stage_name, "done": self.done, "total": self.total}
