"""What observing costs: the request middleware per request, the ingest push per batch, a scrape.

    python benchmarks/telemetry_overhead.py [--requests 20000] [--batches 2000]

* ``Observe`` (request id, access log line, counter and histogram) around an ASGI app that
  answers at once, against the bare app: the difference is the middleware's cost per request.
  The access logger is at INFO with one handler writing to /dev/null, as ``lookalike serve``.
* ``IngestMeter.add`` of one batch's counters to the shared Redis hash (REDIS_URL), one
  pipelined round trip per batch.
* ``GET /metrics`` on an app over an empty embedded engine (engine count, Redis hash, queue
  length, the HTTP series of every request made before it).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry


async def _bare(scope: Any, receive: Any, send: Any) -> None:
    scope["route"] = type("R", (), {"path": "/products/{product_id}"})()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _drive(app: Any, n: int) -> float:
    scope = {"type": "http", "method": "GET", "path": "/products/p1", "headers": []}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        return None

    start = time.perf_counter()
    for _ in range(n):
        await app(dict(scope), receive, send)
    return (time.perf_counter() - start) / n


def middleware_cost(n: int) -> tuple[float, float]:
    from lookalike.api.observe import HttpMetrics, Observe

    handler = logging.FileHandler("/dev/null")
    logging.getLogger("lookalike.access").addHandler(handler)
    logging.getLogger("lookalike.access").setLevel(logging.INFO)
    observed = Observe(_bare, HttpMetrics(CollectorRegistry()))
    bare = statistics.median(asyncio.run(_drive(_bare, n)) for _ in range(3))
    wrapped = statistics.median(asyncio.run(_drive(observed, n)) for _ in range(3))
    return bare, wrapped


def push_cost(redis_url: str, n: int) -> float:
    from lookalike.telemetry import IngestMeter

    meter = IngestMeter(redis_url, "cli")
    counts = {"products_inserted": 64, "images_embedded": 60, "images_reused": 4}
    meter.add(counts)  # connect first
    start = time.perf_counter()
    for _ in range(n):
        meter.add(counts)
    return (time.perf_counter() - start) / n


def scrape_cost(redis_url: str, n: int = 200) -> float:
    from fastapi.testclient import TestClient

    from lookalike.api.app import create_app
    from lookalike.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), text_model="none", redis_url=redis_url)
        with TestClient(create_app(settings)) as c:
            for path in ("/health", "/products/x", "/nope"):
                c.get(path)
            c.get("/metrics")
            start = time.perf_counter()
            for _ in range(n):
                assert c.get("/metrics").status_code == 200
            return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--batches", type=int, default=2_000)
    args = parser.parse_args()
    from lookalike.settings import Settings

    redis_url = Settings().redis_url
    bare, wrapped = middleware_cost(args.requests)
    print(f"request middleware: {(wrapped - bare) * 1e6:.1f} us per request "
          f"(bare app {bare * 1e6:.1f} us, observed {wrapped * 1e6:.1f} us)")  # fmt: skip
    print(f"ingest push to Redis: {push_cost(redis_url, args.batches) * 1e3:.3f} ms per batch")
    print(f"GET /metrics (TestClient, empty engine): {scrape_cost(redis_url) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
