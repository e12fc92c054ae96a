"""Admin endpoints (API key required): blue/green re-indexing, tuning and job states."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from lookalike.api.jobs import celery_results, local_jobs
from lookalike.api.security import WRITE_RESPONSES, WriteAccess
from lookalike.api.state import Serving, serving, swap
from lookalike.engines import open_engine
from lookalike.errors import EngineUnavailable
from lookalike.progress import Progress

router = APIRouter(tags=["admin"], dependencies=[WriteAccess], responses=WRITE_RESPONSES)

RETIRE_AFTER_S = 60.0
BATCH_OUTCOMES = ("inserted", "updated", "unchanged")  # every product of a batch is one of these
ModelName = Annotated[str, Field(min_length=1, max_length=1024)]


class ReindexIn(BaseModel):
    image_model: ModelName = Field(description="The new image model (name, folder or .tflite).")
    image_tensor: str | None = Field(None, max_length=256)
    text_model: ModelName | None = None
    batch_size: int | None = Field(None, ge=1, le=10_000)
    keep_old: bool = False


Label = Annotated[str, Field(min_length=1, max_length=256)]


class TuneIn(BaseModel):
    labels: list[Label] = Field(
        default_factory=lambda: ["category", "color"],
        min_length=1,
        max_length=8,
        description="Fields or attributes to learn from (`lookalike tune --label`).",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1)
    epochs: int = Field(10, ge=1, le=200)
    linear: bool = Field(False, description="A linear head, no ReLU (`lookalike tune --linear`).")


class JobOut(BaseModel):
    id: str
    kind: str = Field(
        description="`reindex` or `tune` (a thread in the API), or `index_batch` (Celery)."
    )
    state: str = Field(description="PENDING, STARTED, SUCCESS, FAILURE, RETRY...")
    result: dict[str, Any] | None = None
    error: str | None = None
    done: int | None = Field(None, description="Products done so far (a re-index, a batch).")
    total: int | None = Field(None, description="Products the job has to do, when known.")


def _counts(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {"done": snapshot.get("done"), "total": snapshot.get("total")}


def _reindex(app: FastAPI, body: ReindexIn, progress: Progress) -> dict[str, Any]:
    """Build green, switch, then serve from the new target."""
    from indexer.reindex import reindex

    settings = serving(app).settings
    report = reindex(
        settings,
        body.image_model,
        image_tensor=body.image_tensor,
        text_model=body.text_model,
        batch_size=body.batch_size,
        keep_old=body.keep_old,
        progress=progress,
        role="api",
    )
    new_settings = settings.model_copy(
        update={
            "image_model": body.image_model,
            "image_tensor": body.image_tensor,
            "text_model": body.text_model or settings.text_model,
        }
    )
    # One step: a request sees the old settings and engine or the new ones, never a mix.
    old = swap(app, Serving(new_settings, open_engine(new_settings)))
    # Requests that picked up the old engine finish on it; it closes after a grace period.
    closer = threading.Timer(RETIRE_AFTER_S, old.engine.close)
    closer.daemon = True
    closer.start()
    return report.to_dict()


@router.post("/admin/reindex", response_model=JobOut, status_code=202)
def start_reindex(request: Request, body: ReindexIn) -> Any:
    """Re-index every product with a new model in the background; GET /jobs/{id} follows it.

    The old index keeps answering until the new one is complete, then readers switch at
    once. One re-index at a time (409 while one runs).
    """
    job = local_jobs(request).start(
        "reindex", lambda progress: _reindex(request.app, body, progress)
    )
    return JobOut(id=job.id, kind=job.kind, state=job.state, **_counts(job.progress.snapshot()))


def _tune(request: Request, body: TuneIn, progress: Progress) -> dict[str, Any]:
    """Train the head on the serving engine's stored vectors; it serves ``tuned`` at once."""
    from lookalike.tuning.train import TuneOptions, tune

    options = TuneOptions(
        labels=tuple(body.labels), seed=body.seed, epochs=body.epochs, linear=body.linear
    )
    return tune(serving(request.app).engine, options, progress).to_dict()


@router.post("/admin/tune", response_model=JobOut, status_code=202)
def start_tune(request: Request, body: TuneIn) -> Any:
    """Learn the catalogue's similarity from its labels in the background (`lookalike tune`);
    GET /jobs/{id} gives the held-out P@10 before and after and the weights to query with.
    One tune at a time (409 while one runs)."""
    job = local_jobs(request).start("tune", lambda progress: _tune(request, body, progress))
    return JobOut(id=job.id, kind=job.kind, state=job.state, **_counts(job.progress.snapshot()))


@router.get("/jobs/{job_id}", response_model=JobOut)
async def job_state(
    request: Request, job_id: Annotated[str, Path(min_length=1, max_length=64)]
) -> Any:
    """A job's state: a re-index started here, or a queued ingest batch (Celery).

    Celery cannot tell an unknown id from a queued one: both are PENDING.
    """
    job = local_jobs(request).get(job_id)
    if job is not None:
        return JobOut(
            id=job.id,
            kind=job.kind,
            state=job.state,
            result=job.result,
            error=job.error,
            **_counts(job.progress.snapshot()),
        )

    def celery_state() -> JobOut:
        result = celery_results(request).AsyncResult(job_id)
        try:
            state, payload = str(result.state), result.result
        except Exception as exc:  # the result backend (Redis) is unreachable
            raise EngineUnavailable(f"the job store is unavailable: {type(exc).__name__}") from exc
        out = JobOut(id=job_id, kind="index_batch", state=state)
        if state == "STARTED" and isinstance(payload, dict):  # the task's own done/total
            out.done, out.total = payload.get("done"), payload.get("total")
        if state == "SUCCESS" and isinstance(payload, dict):
            out.result = payload
            out.done = out.total = sum(int(payload.get(k, 0)) for k in BATCH_OUTCOMES)
        elif state == "FAILURE":
            out.error = f"{type(payload).__name__}: {payload}"
        return out

    return await run_in_threadpool(celery_state)
