"""The CLI's one progress style: a tqdm bar per stage on stderr, with a total and an ETA.

Every long command (index, reindex, clusters --k-range, map, gaps propose, eval) makes its
bar here, so they all look alike and stdout stays clean for ``--json``.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from lookalike.progress import Progress

BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar:24}| {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}]"
)
OPEN_FORMAT = "{desc}: {n_fmt} {unit} [{elapsed}]"  # a stage whose size is not known


class Bar(Progress):
    """tqdm bars, one per stage (also when stderr is a log file: one line per refresh)."""

    def __init__(self, unit: str = "product", disable: bool = False) -> None:
        super().__init__()
        self.unit, self.disable = unit, disable
        self._bar: Any = None

    def on_stage(self, name: str, total: int | None) -> None:
        self._close()
        self._bar = tqdm(
            total=total,
            desc=name,
            unit=self.unit,
            file=sys.stderr,
            dynamic_ncols=True,
            disable=self.disable,
            bar_format=BAR_FORMAT if total is not None else OPEN_FORMAT,
        )

    def on_advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def on_finish(self) -> None:
        self._close()

    def _close(self) -> None:
        if self._bar is not None:
            if self._bar.total is not None and self._bar.n != self._bar.total:
                self._bar.total = self._bar.n  # rejected records, or a stage that ended early
                self._bar.refresh()
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()


def catalogue_length(path: Path) -> int | None:
    """Records in a catalogue file (JSON Lines: non-blank lines; CSV: rows after the header),
    read once before indexing so the bar has a total; None when it cannot be read."""
    try:
        with path.open(encoding="utf-8", errors="replace", newline="") as fh:
            if path.suffix.lower() in (".csv", ".tsv"):
                return max(0, sum(1 for _ in csv.reader(fh)) - 1)
            return sum(1 for line in fh if line.strip())
    except OSError:
        return None  # the indexer reports the missing file in its own words


def progress_bar(unit: str = "product") -> Bar:
    """The bar every long command shows (on stderr; stdout stays for the answer)."""
    return Bar(unit)
