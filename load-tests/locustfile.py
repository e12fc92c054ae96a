"""Locust scenarios for the Lookalike HTTP API on the synthetic catalogue of the benchmarks.

Products are ``p0000000`` .. ``p{N-1:07d}`` (``LOAD_N``, default 100000) with categories
``category0..7``, colours ``colour0..19``, prices 5..500 and Zipf title words ``w0, w1, ...``
(``benchmarks/engine_bench.py``). Each simulated user thinks ``LOAD_WAIT_MIN`` ..
``LOAD_WAIT_MAX`` seconds (default 0.5 .. 1.5) between requests; ``LOAD_WAIT_MAX=0`` makes
users fire back to back (saturation). Run through ``load-tests/run.sh``.
"""

from __future__ import annotations

import os
import random

from locust import FastHttpUser, between, constant, task

N = int(os.environ.get("LOAD_N", "100000"))
WAIT_MIN = float(os.environ.get("LOAD_WAIT_MIN", "0.5"))
WAIT_MAX = float(os.environ.get("LOAD_WAIT_MAX", "1.5"))
FREQUENT = [f"w{i}" for i in range(10)]  # thousands of matches each: a full window of 1000
MIDDLE = [f"w{i}" for i in range(30, 500)]


def product() -> str:
    return f"p{random.randrange(N):07d}"


def category() -> str:
    return f"category{random.randrange(8)}"


class Shopper(FastHttpUser):
    """A merchandiser's session: keyword searches re-ranked by liked products, more like
    this, sort by similar within a category, and browsing by filters."""

    wait_time = between(WAIT_MIN, WAIT_MAX) if WAIT_MAX > 0 else constant(0)

    def _get(self, path: str, name: str, params: dict[str, object]) -> None:
        with self.client.get(path, params=params, name=name, catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {resp.text[:200]}")
            elif "hits" not in (resp.json() or {}):
                resp.failure("no hits field in the answer")

    @task(4)
    def search_with_anchors(self) -> None:
        """Keyword + 2 filters, re-ranked by 3 weighted anchors (the 50 ms p95 target)."""
        anchors = f"{product()}:2,{product()},{product()}"
        params = {
            "q": f"{random.choice(FREQUENT)} {random.choice(MIDDLE)}",
            "anchor_ids": anchors,
            "category": category(),
            "price_max": round(random.uniform(150, 450), 2),
            "k": 10,
        }
        self._get("/search", "search + re-rank (q, 2 filters, 3 anchors)", params)

    @task(3)
    def similar(self) -> None:
        """More like this: one product, no filter."""
        self._get(f"/products/{product()}/similar", "similar (more like this)", {"k": 10})

    @task(2)
    def sort_by_similar(self) -> None:
        """Filters and anchors, no keywords: the category sorted by similarity."""
        params = {"anchor_ids": f"{product()},{product()}", "category": category(), "k": 20}
        self._get("/search", "sort by similar (2 anchors, category)", params)

    @task(2)
    def browse(self) -> None:
        """Filters only, paging: category, colour and a price range."""
        params = {
            "category": category(),
            "color": f"colour{random.randrange(20)}",
            "price_min": 20,
            "price_max": 300,
            "k": 20,
            "offset": random.choice((0, 20, 40)),
        }
        self._get("/search", "browse (3 filters, paged)", params)
