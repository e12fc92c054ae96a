"""Work the API starts but does not finish in the request: Celery jobs and local threads.

Ingest sends Celery jobs to the broker named by the app's settings (not the import-time
global app, so a test or a second deployment can point elsewhere). Long admin work
(re-indexing) runs in one background thread per job, tracked here by id.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from fastapi import Request

from lookalike.api.state import Serving, serving
from lookalike.errors import Conflict
from lookalike.progress import Progress

_init_lock = threading.Lock()


def _celery(request: Request, name: str, results: bool) -> Celery:
    state = request.app.state
    with _init_lock:
        if getattr(state, name, None) is None:
            from indexer.celery_app import make_celery

            settings = serving(request.app).settings
            made = make_celery(settings.redis_url, settings.visibility_timeout)
            if not results:
                # No result subscription per sent job: nothing grows in the API process, and a
                # broker that is down fails the send at once instead of after backend retries.
                made.conf.result_backend = "disabled"
            setattr(state, name, made)
    app: Celery = getattr(state, name)
    return app


def celery_app(request: Request) -> Celery:
    """The producer for the settings' broker (sends jobs; never waits on their results)."""
    return _celery(request, "celery_producer", results=False)


def celery_results(request: Request) -> Celery:
    """The app that reads job states from the result backend."""
    return _celery(request, "celery_results", results=True)


def index_context(request: Request, now: Serving) -> Any:
    """The inline-ingest context over ``now``'s engine: its models are loaded on first use
    and again only when a re-index has swapped in another settings-and-engine pair."""
    state = request.app.state
    with _init_lock:
        held = getattr(state, "index_context", None)
        if held is None or held[0] is not now:
            from indexer.context import build_context

            ctx = build_context(now.settings, engine=now.engine)
            ctx.meter = state.ingest_meter  # counted as the API's ingest (lookalike/telemetry.py)
            held = state.index_context = (now, ctx)
    return held[1]


@dataclass
class LocalJob:
    id: str
    kind: str
    state: str = "STARTED"
    result: dict[str, Any] | None = None
    error: str | None = None
    thread: threading.Thread | None = field(default=None, repr=False)
    # the work reports into this; GET /jobs/{id} shows its done/total
    progress: Progress = field(default_factory=Progress, repr=False)


class LocalJobs:
    """Background threads by id; one running job per kind."""

    def __init__(self) -> None:
        self._jobs: dict[str, LocalJob] = {}
        self._lock = threading.Lock()

    def get(self, job_id: str) -> LocalJob | None:
        return self._jobs.get(job_id)

    def start(self, kind: str, work: Callable[[Progress], dict[str, Any]]) -> LocalJob:
        """Run ``work(progress)`` in a thread; 409 while a job of this kind runs."""
        with self._lock:
            running = [j for j in self._jobs.values() if j.kind == kind and j.state == "STARTED"]
            if running:
                raise Conflict(f"a {kind} job is already running", job=running[0].id)
            job = LocalJob(id=str(uuid.uuid4()), kind=kind)
            self._jobs[job.id] = job

        def run() -> None:
            try:
                job.result = work(job.progress)
                job.state = "SUCCESS"
            except Exception as exc:  # noqa: BLE001 - the job reports its failure
                job.error = f"{type(exc).__name__}: {exc}"
                job.state = "FAILURE"

        job.thread = threading.Thread(target=run, name=f"lookalike-{kind}-{job.id}", daemon=True)
        job.thread.start()
        return job


def local_jobs(request: Request) -> LocalJobs:
    state = request.app.state
    with _init_lock:
        if getattr(state, "local_jobs", None) is None:
            state.local_jobs = LocalJobs()
    jobs: LocalJobs = state.local_jobs
    return jobs
