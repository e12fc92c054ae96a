"""kill -9 a process writing to the embedded engine, many times, at random moments.

After each kill: SQLite's integrity_check passes, every batch is all or nothing (50 products
or none; a rewrite reaches all 50 or none), and after a restart the derived indexes agree
with SQLite: tantivy finds exactly the committed products, kNN finds each by its vector.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from lookalike.engines.embedded import EmbeddedEngine
from tests.conftest import ROOT
from tests.test_reliability_writer import ANN_THRESHOLD, BATCH, vector_for

pytestmark = pytest.mark.slow

KILLS = 20


def sqlite_state(path: Path) -> dict[int, dict[str, tuple[int, str]]]:
    """Per batch: product id -> (revision, title), read straight from SQLite."""
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = conn.execute("SELECT id, revision, doc FROM products WHERE deleted = 0")
        batches: dict[int, dict[str, tuple[int, str]]] = defaultdict(dict)
        for pid, revision, doc in rows:
            batches[int(pid[1:].split("-")[0])][pid] = (revision, json.loads(doc)["title"])
    return batches


def check_batches(batches: dict[int, dict[str, tuple[int, str]]]) -> None:
    for batch, products in batches.items():
        assert len(products) == BATCH, f"batch {batch} half-written: {len(products)}"
        assert len({v for v in products.values()}) == 1, f"batch {batch} half-rewritten"


def check_derived(data: Path, batches: dict[int, dict[str, tuple[int, str]]]) -> None:
    with EmbeddedEngine(data, ann_threshold=ANN_THRESHOLD, ann_background=False) as engine:
        engine.refresh()
        assert engine.count() == sum(len(p) for p in batches.values())
        for batch, products in batches.items():
            found = {c.id for c in engine.keyword_search(f"batch{batch}", limit=1000)}
            assert found == set(products), f"keyword index disagrees on batch {batch}"
            title = next(iter(products.values()))[1]
            tag = title.split()[-1]
            if tag != "rev0":
                found = {c.id for c in engine.keyword_search(tag, limit=1000)}
                assert found == set(products), f"keyword index misses rewrite {tag}"
        absent = max(batches, default=0) + 1
        assert engine.keyword_search(f"batch{absent}") == []
        engine.build_ann()
        sample = [pid for products in batches.values() for pid in list(products)[:3]]
        for pid in sample:
            [top] = engine.knn(vector_for(pid), k=1)
            assert top.id == pid


def test_kill_9_writer_many_times(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rng = np.random.default_rng(7)
    committed_total = 0
    for round_no in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.test_reliability_writer", str(data), str(round_no)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("committed")  # the engine is up and writing
        time.sleep(float(rng.uniform(0.0, 0.4)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        batches = sqlite_state(data / "lookalike.db")
        check_batches(batches)
        if round_no % 5 == 4 or round_no == KILLS - 1:  # restarts are the slow part
            check_derived(data, batches)
        committed_total = len(batches)
    print(f"\n{KILLS} kills: {committed_total} batches of {BATCH} intact, indexes consistent")
    assert committed_total >= KILLS
