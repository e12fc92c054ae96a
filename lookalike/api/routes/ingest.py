"""Write endpoints for products: ingest a batch of records, delete by id (API key required).

Ingest validates every record on its own: the good ones are indexed (Celery jobs on Redis, or
in this process with ``LOOKALIKE_INGEST_MODE=inline``) and the bad ones come back with their
reasons, so one bad record never loses the batch.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from lookalike.api.deps import EngineDep, ServingDep
from lookalike.api.jobs import celery_app, index_context
from lookalike.api.limits import MAX_DELETE_IDS, MAX_INGEST_RECORDS
from lookalike.api.security import WRITE_RESPONSES, WriteAccess
from lookalike.api.state import Serving
from lookalike.errors import NotFound
from lookalike.records import ProductRecord, RecordError, is_http_url, validate_record
from lookalike.settings import Settings

router = APIRouter(tags=["ingest"], dependencies=[WriteAccess], responses=WRITE_RESPONSES)

# The schema documents the records' shape; the route itself takes any JSON list, so one bad
# record is reported in ``rejected`` instead of failing the whole batch with a 422.
INGEST_BODY = {
    "requestBody": {
        "content": {"application/json": {"schema": {"items": ProductRecord.model_json_schema()}}}
    }
}


class Rejected(BaseModel):
    index: int = Field(description="Position of the record in the posted list (from 0).")
    id: str | None = None
    reason: str


class IngestOut(BaseModel):
    mode: str = Field(description="`queue` (Celery jobs) or `inline` (indexed already).")
    accepted: int
    rejected: list[Rejected]
    jobs: list[str] = Field(description="Celery job ids (GET /jobs/{id}); empty inline.")
    report: dict[str, Any] | None = Field(None, description="Inline only: the batch report.")


class DeleteIn(BaseModel):
    ids: list[Annotated[str, Field(min_length=1, max_length=512)]] = Field(
        min_length=1, max_length=MAX_DELETE_IDS
    )


class DeleteOut(BaseModel):
    deleted: int
    missing: list[str]


def _check(raw: Any, index: int, settings: Settings) -> ProductRecord | Rejected:
    """One posted record, validated; local image paths only when image roots confine them."""
    parsed = validate_record(raw, index)
    if isinstance(parsed, RecordError):
        return Rejected(index=index, id=parsed.id, reason=parsed.reason)
    record = parsed.record
    local = [src for src in record.images if not is_http_url(src)]
    if local and not settings.image_roots:
        return Rejected(
            index=index,
            id=record.id,
            reason="images must be http(s) URLs (local paths need LOOKALIKE_IMAGE_ROOTS)",
        )
    return record


def _enqueue(request: Request, now: Serving, records: list[ProductRecord]) -> list[str]:
    from indexer.run import enqueue

    return enqueue(records, now.engine, celery_app(request), now.settings.batch_size)[0]


def _inline(request: Request, now: Serving, records: list[ProductRecord]) -> dict[str, Any]:
    from indexer.run import ingest

    settings = now.settings
    ctx = index_context(request, now)
    report = ingest(records, ctx, batch_size=settings.batch_size, workers=settings.ingest_workers)
    return report.batches.to_dict()


@router.post(
    "/products",
    response_model=IngestOut,
    status_code=202,
    responses={200: {"model": IngestOut, "description": "Indexed inline, or nothing to do."}},
    openapi_extra=INGEST_BODY,
)
def ingest_products(
    request: Request,
    response: Response,
    now: ServingDep,
    records: Annotated[
        list[Any],
        Body(
            min_length=1,
            max_length=MAX_INGEST_RECORDS,
            description="Catalogue records, as in a JSONL catalogue (id, title, images, ...).",
        ),
    ],
) -> Any:
    """Index a batch of records; each bad record is reported with its reason, never fatal.

    Queued (default): 202 with Celery job ids. Inline (``LOOKALIKE_INGEST_MODE=inline``):
    200 with the batch report, the products searchable on return.
    """
    settings = now.settings
    good: list[ProductRecord] = []
    rejected: list[Rejected] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(records):
        checked = _check(raw, index, settings)
        if isinstance(checked, Rejected):
            rejected.append(checked)
        elif checked.id in seen:
            rejected.append(
                Rejected(
                    index=index, id=checked.id, reason=f"duplicate of record {seen[checked.id]}"
                )
            )
        else:
            seen[checked.id] = index
            good.append(checked)
    request.app.state.ingest_meter.add({"records_rejected": len(rejected)})
    out = IngestOut(mode=settings.ingest_mode, accepted=len(good), rejected=rejected, jobs=[])
    if not good:
        response.status_code = 200
        return out
    if settings.ingest_mode == "inline":
        out.report = _inline(request, now, good)
        response.status_code = 200
    else:
        out.jobs = _enqueue(request, now, good)
    return out


@router.delete("/products/{product_id}", response_model=DeleteOut)
def delete_product(
    product_id: Annotated[str, Path(min_length=1, max_length=512)], engine: EngineDep
) -> Any:
    """Delete one product; 404 when it does not exist."""
    if engine.delete([product_id]) == 0:
        raise NotFound(f"unknown product id: {product_id}", ids=[product_id])
    return DeleteOut(deleted=1, missing=[])


@router.post("/products/delete", response_model=DeleteOut)
async def delete_products(body: DeleteIn, engine: EngineDep) -> Any:
    """Delete several products; ids that do not exist are listed, not an error."""
    ids = list(dict.fromkeys(body.ids))

    def run() -> DeleteOut:
        existing = set(engine.get(ids))
        deleted = engine.delete(sorted(existing)) if existing else 0
        return DeleteOut(deleted=deleted, missing=[i for i in ids if i not in existing])

    return await run_in_threadpool(run)
