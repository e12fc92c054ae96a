"""/search: keyword and filter search re-scored against anchors; query by image or by text."""

from __future__ import annotations

import json
from functools import partial
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from lookalike.api.deps import FiltersDep, RerankDep, ServingDep
from lookalike.api.imagelinks import link_hits
from lookalike.api.routes.sessions import SessionQueryDep
from lookalike.api.schemas import PublicSearchResult
from lookalike.errors import InvalidInput
from lookalike.settings import Settings
from lookalike.vectorizers.baselines import COLOR_SPACE, color_vectorizer
from lookalike.vectors import unit_mean

router = APIRouter(tags=["search"])

MAX_QUERY_CHARS = 512
MAX_QUERY_IMAGES = 10  # images of one uploaded query set (one product seen several ways)
IMAGE_BODY = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "maxItems": MAX_QUERY_IMAGES,
                            "description": "One image, or several images of one product "
                            "(repeat the part): the query is then an image set.",
                        }
                    },
                    "required": ["file"],
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "url": {"type": "string", "format": "uri"},
                        "urls": {
                            "type": "array",
                            "items": {"type": "string", "format": "uri"},
                            "maxItems": MAX_QUERY_IMAGES,
                        },
                    },
                }
            },
        },
        "required": True,
    }
}


class Answer:
    """How /search, /search/image and /products/{id}/similar answer: the re-ranking parameters
    and filters made one request, with the shopper session's anchors, on one settings-and-engine
    pair (a re-index swapping them mid-request changes nothing for this request)."""

    def __init__(
        self,
        now: ServingDep,
        filters: FiltersDep,
        params: RerankDep,
        session: SessionQueryDep,
    ) -> None:
        self.settings, self.engine = now.settings, now.engine
        self.filters, self.params, self.session = filters, params, session

    def __call__(self, **overrides: Any) -> PublicSearchResult:
        """The answer; ``overrides``: what the route adds (query, like, query vectors). Hits
        carry ``image_url``; local paths only for write keys."""
        req = self.params.request(self.settings, filters=self.filters, **overrides)
        result = self.session.run(self.engine, req)
        return link_hits(result, self.engine, self.session.request)


AnswerDep = Annotated[Answer, Depends(Answer)]


def _image_model(settings: Settings) -> Any:
    """The image model, loaded on first use in this process (cached by the factory)."""
    from lookalike.vectorizers import create_image_vectorizer

    return create_image_vectorizer(settings.image_model, settings.image_tensor)


def _text_in_image_space(settings: Settings, text: str) -> np.ndarray:
    """``q_visual``: a text embedded in the image model's space (joint text-image models only)."""
    model = _image_model(settings)
    try:
        vector: np.ndarray = model.embed_texts([text])[0]
    except NotImplementedError:
        raise InvalidInput(
            f"q_visual needs a joint text-image model (CLIP); {model.name} has no text side",
            model=model.name,
        ) from None
    return vector


@router.get("/search", response_model=PublicSearchResult)
def search_products(
    answer: AnswerDep,
    q: Annotated[str, Query(max_length=MAX_QUERY_CHARS, description="Keywords.")] = "",
    q_visual: Annotated[
        str,
        Query(max_length=MAX_QUERY_CHARS, description="Text matched against image vectors (CLIP)."),
    ] = "",
) -> Any:
    """BM25 within the filters, re-scored against anchors (weights, aggregation, negatives).

    With anchors and no keywords, the filtered set is sorted by similarity.
    """
    text = q_visual.strip()
    vectors = {"image": _text_in_image_space(answer.settings, text)} if text else {}
    return answer(query=q, query_vectors=vectors)


async def _read_images(request: Request, settings: Settings) -> list[Any]:
    """The posted image(s): multipart ``file`` parts, or JSON ``{"url": ...}`` /
    ``{"urls": [...]}`` (never a local file). Several images are one product's image set."""
    from lookalike.images import decode_image, load_image

    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        # Parsing stops one file past the limit (the check below then answers clearly).
        form = await request.form(max_files=MAX_QUERY_IMAGES + 1, max_fields=20)
        uploads = form.getlist("file")
        if not uploads or any(isinstance(u, str) for u in uploads):
            raise InvalidInput("multipart body needs a 'file' part with the image")
        if len(uploads) > MAX_QUERY_IMAGES:
            raise InvalidInput(f"at most {MAX_QUERY_IMAGES} images per query", count=len(uploads))
        images = []
        for upload in uploads:
            data = await upload.read(settings.image_max_bytes + 1)  # type: ignore[union-attr]
            if len(data) > settings.image_max_bytes:
                raise InvalidInput(f"image larger than {settings.image_max_bytes} bytes")
            name = upload.filename or "upload"  # type: ignore[union-attr]
            images.append(await run_in_threadpool(decode_image, data, name))
        return images
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise InvalidInput('body must be multipart (file) or JSON {"url": ...}') from None
    body = body if isinstance(body, dict) else {}
    urls = body.get("urls") if "urls" in body else [body.get("url")]
    if not isinstance(urls, list) or not 1 <= len(urls) <= MAX_QUERY_IMAGES:
        raise InvalidInput(f'JSON "urls" must list 1 to {MAX_QUERY_IMAGES} image URLs')
    for url in urls:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidInput('JSON body must be {"url": "http(s)://..."} or {"urls": [...]}')
    images = []
    for url in urls:
        loaded = await run_in_threadpool(
            partial(
                load_image,
                url,
                allow_local=False,
                timeout=settings.image_timeout,
                max_bytes=settings.image_max_bytes,
            )
        )
        images.append(loaded.image)
    return images


@router.post(
    "/search/image",
    response_model=PublicSearchResult,
    openapi_extra=IMAGE_BODY,
)
async def search_by_image(
    request: Request,
    answer: AnswerDep,
    q: Annotated[str, Query(max_length=MAX_QUERY_CHARS, description="Keywords.")] = "",
) -> Any:
    """Products that look like the posted image (upload or URL), within filters and keywords.

    Several images (repeated ``file`` parts, or ``urls``) are one product seen several ways:
    the query is that image set (compared as ``set_method`` says; ``mean`` by default).
    """
    images = await _read_images(request, answer.settings)

    def run() -> PublicSearchResult:
        vectors = _image_model(answer.settings).embed_images(images)
        wanted: dict[str, np.ndarray] = {"image": vectors[0] if len(vectors) == 1 else vectors}
        if answer.settings.color_vectors:  # the images' palette, as the pipeline stores it
            wanted[COLOR_SPACE] = unit_mean(color_vectorizer().embed_images(images))
        return answer(query=q, query_vectors=wanted)

    return await run_in_threadpool(run)
