"""``GET /metrics``: the Prometheus text format, for a scraper (read access like every read).

Besides the HTTP series :mod:`lookalike.api.observe` counts, everything here is collected at
scrape time: the engine's product count and vector spaces, the ingest counters every process
(CLI, API, Celery workers) pushed to Redis, and the Celery queue's depth. When Redis does not
answer, the ingest counters are this API process's own and the queue depth is left out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from lookalike.api.observe import HttpMetrics
from lookalike.api.state import serving
from lookalike.settings import Settings
from lookalike.telemetry import (
    INGEST_COUNTERS,
    QUEUE_NAME,
    IngestMeter,
    queue_depth,
    shared_ingest_counts,
)

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


class ServiceCollector(Collector):
    """Gauges and counters read from the engine and Redis when Prometheus scrapes."""

    def __init__(self, app: Any) -> None:
        self.app = app  # read at each scrape: a re-index swaps the settings and engine

    def collect(self) -> Iterator[Metric]:
        now = serving(self.app)
        settings = now.settings
        up = GaugeMetricFamily("lookalike_engine_up", "1 when the engine answered this scrape.")
        try:
            engine_series = list(self._engine(now.engine, settings))
        except Exception:  # noqa: BLE001 - a scrape reports a broken engine, it does not fail
            log.warning("the engine did not answer the metrics scrape", exc_info=True)
            engine_series = []
        up.add_metric([], 1 if engine_series else 0)
        yield up
        yield from engine_series
        yield from self._ingest(settings.redis_url)
        depth = queue_depth(settings.redis_url)
        if depth is not None:
            queued = GaugeMetricFamily(
                "lookalike_queue_depth",
                "Ingest jobs waiting in the Celery queue.",
                labels=["queue"],
            )
            queued.add_metric([QUEUE_NAME], depth)
            yield queued

    def _engine(self, engine: Any, settings: Settings) -> Iterator[Metric]:
        products = GaugeMetricFamily("lookalike_engine_products", "Products the engine holds.")
        products.add_metric([], engine.count())
        yield products
        spaces = GaugeMetricFamily(
            "lookalike_engine_vector_space",
            "The vector spaces searched (1 each): the model of each and the projection serving "
            "it (a PCA, a learned head), if any.",
            labels=["space", "model", "projection"],
        )
        projections = engine.projections()
        models = {"image": settings.image_model, "text": settings.text_model}
        for space, model in models.items():
            if space == "text" and model.lower() == "none":
                continue
            held = projections.get(space)
            spaces.add_metric([space, model, held.tag if held else ""], 1)
        spaces.add_metric(["attributes", "vocabulary", ""], 1)
        for space, held in sorted(projections.items()):
            if space not in models and space != "attributes":  # a derived space ("tuned")
                spaces.add_metric([space, held.model, held.tag], 1)
        yield spaces

    def _ingest(self, redis_url: str) -> Iterator[Metric]:
        shared = shared_ingest_counts(redis_url)
        if shared is None:
            meter: IngestMeter = self.app.state.ingest_meter
            shared = {(meter.role, name): value for name, value in meter.local.items()}
        families = {
            "products": CounterMetricFamily(
                "lookalike_ingest_products",
                "Products ingested, by process role and outcome.",
                labels=["role", "outcome"],
            ),
            "images": CounterMetricFamily(
                "lookalike_ingest_images",
                "Product images ingested, by process role and outcome.",
                labels=["role", "outcome"],
            ),
        }
        rejected = CounterMetricFamily(
            "lookalike_ingest_records_rejected",
            INGEST_COUNTERS["records_rejected"],
            labels=["role"],
        )
        for (role, name), value in sorted(shared.items()):
            kind, _, outcome = name.partition("_")
            if name == "records_rejected":
                rejected.add_metric([role], value)
            else:
                families[kind].add_metric([role, outcome], value)
        yield from families.values()
        yield rejected


def install_metrics(app: Any, settings: Settings) -> HttpMetrics:
    """The app's own registry (never the global one: several apps may live in one process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(app))
    app.state.metrics_registry = registry
    app.state.ingest_meter = IngestMeter(settings.redis_url, "api")
    app.include_router(router)
    return HttpMetrics(registry)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
)
async def metrics(request: Request) -> Response:
    """Request counts and latencies, catalogue size, ingest counters and queue depth."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
