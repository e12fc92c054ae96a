"""/search: keyword and filter search re-scored against anchors; query by image or by text."""

from __future__ import annotations

import json
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from lookalike.api.deps import EngineDep, FiltersDep, RerankDep, SettingsDep
from lookalike.api.schemas import SearchOut
from lookalike.errors import InvalidInput
from lookalike.settings import Settings
from reranker import run

router = APIRouter(tags=["search"])

MAX_QUERY_CHARS = 512
IMAGE_BODY = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"url": {"type": "string", "format": "uri"}},
                    "required": ["url"],
                }
            },
        },
        "required": True,
    }
}


def _image_model(request: Request, settings: Settings) -> Any:
    """The image model, loaded on first use in this process (cached by the factory)."""
    from lookalike.vectorizers import create_image_vectorizer

    return create_image_vectorizer(settings.image_model, settings.image_tensor)


def _text_in_image_space(request: Request, settings: Settings, text: str) -> np.ndarray:
    """``q_visual``: a text embedded in the image model's space (joint text-image models only)."""
    model = _image_model(request, settings)
    try:
        vector: np.ndarray = model.embed_texts([text])[0]
    except NotImplementedError:
        raise InvalidInput(
            f"q_visual needs a joint text-image model (CLIP); {model.name} has no text side",
            model=model.name,
        ) from None
    return vector


@router.get("/search", response_model=SearchOut, response_model_exclude_unset=True)
def search_products(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    filters: FiltersDep,
    params: RerankDep,
    q: Annotated[str, Query(max_length=MAX_QUERY_CHARS, description="Keywords.")] = "",
    q_visual: Annotated[
        str,
        Query(max_length=MAX_QUERY_CHARS, description="Text matched against image vectors (CLIP)."),
    ] = "",
) -> Any:
    """BM25 within the filters, re-scored against anchors (weights, aggregation, negatives).

    With anchors and no keywords, the filtered set is sorted by similarity.
    """
    req = params.request(settings, query=q, filters=filters)
    if q_visual.strip():
        req.query_vectors["image"] = _text_in_image_space(request, settings, q_visual.strip())
    return run(engine, req).to_dict()


async def _read_image(request: Request, settings: Settings) -> Any:
    """The posted image: multipart ``file``, or JSON ``{"url": ...}`` (never a local file)."""
    from lookalike.images import decode_image, load_image

    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidInput("multipart body needs a 'file' part with the image")
        data = await upload.read(settings.image_max_bytes + 1)
        if len(data) > settings.image_max_bytes:
            raise InvalidInput(f"image larger than {settings.image_max_bytes} bytes")
        return await run_in_threadpool(decode_image, data, upload.filename or "upload")
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise InvalidInput('body must be multipart (file) or JSON {"url": ...}') from None
    url = body.get("url") if isinstance(body, dict) else None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidInput('JSON body must be {"url": "http(s)://..."}')
    loaded = await run_in_threadpool(
        lambda: load_image(
            url,
            allow_local=False,
            timeout=settings.image_timeout,
            max_bytes=settings.image_max_bytes,
        )
    )
    return loaded.image


@router.post(
    "/search/image",
    response_model=SearchOut,
    response_model_exclude_unset=True,
    openapi_extra=IMAGE_BODY,
)
async def search_by_image(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    filters: FiltersDep,
    params: RerankDep,
    q: Annotated[str, Query(max_length=MAX_QUERY_CHARS, description="Keywords.")] = "",
) -> Any:
    """Products that look like the posted image (upload or URL), within filters and keywords."""
    image = await _read_image(request, settings)

    def answer() -> Any:
        vector = _image_model(request, settings).embed_images([image])[0]
        req = params.request(settings, query=q, filters=filters, query_vectors={"image": vector})
        return run(engine, req).to_dict()

    return await run_in_threadpool(answer)
