"""What the pipeline needs to run: the engine, the models and the image limits.

Built once per process (CLI run or Celery worker) and reused for every batch, because
loading models is the slow part. An :class:`ImagePool` adds worker processes, each with its
own copy of the image model, so decoding and embedding use every core while this process
reads, writes and embeds texts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.attributes import AttributeEncoder
from lookalike.engines import Engine, open_engine
from lookalike.netguard import Resolver
from lookalike.settings import Settings
from lookalike.telemetry import IngestMeter
from lookalike.vectorizers import create_image_vectorizer, create_text_embedder
from lookalike.vectorizers.base import ImageVectorizer, TextEmbedder
from lookalike.vectorizers.baselines import COLOR_SPACE, color_vectorizer


@dataclass
class IndexContext:
    engine: Engine
    image_vectorizer: ImageVectorizer
    text_embedder: TextEmbedder | None
    image_timeout: float = 10.0
    image_max_bytes: int = 20_000_000
    allowed_hosts: tuple[str, ...] = ()
    image_roots: tuple[Path, ...] = ()
    resolve: Resolver | None = field(default=None, repr=False)  # tests fake DNS here
    # what an ImagePool's workers load: the image model and tensor named by the settings
    image_model: str | None = None
    image_tensor: str | None = None
    # the colour/style vectorizer (``color`` space), run on the images the image model decodes
    color_vectorizer: ImageVectorizer | None = None
    # where each batch's counts go (the shared Redis hash /metrics serves); None: not counted
    meter: IngestMeter | None = field(default=None, repr=False)

    def models(self) -> dict[str, str]:
        """The tags of what embeds a record (image, colour, text, attributes): part of its
        fingerprint, so turning the colour signal on re-indexes the catalogue."""
        out = {"image": self.image_vectorizer.tag, "attributes": AttributeEncoder().tag}
        if self.color_vectorizer is not None:
            out[COLOR_SPACE] = self.color_vectorizer.tag
        if self.text_embedder is not None:
            out["text"] = self.text_embedder.tag
        return out


def build_context(
    settings: Settings, engine: Engine | None = None, role: str = "cli"
) -> IndexContext:
    """Load the engine and models named by the settings; ``role`` labels its ingest counters."""
    return IndexContext(
        engine=engine or open_engine(settings),
        image_vectorizer=create_image_vectorizer(settings.image_model, settings.image_tensor),
        text_embedder=create_text_embedder(settings.text_model, **settings.text_backend_options()),
        image_timeout=settings.image_timeout,
        image_max_bytes=settings.image_max_bytes,
        allowed_hosts=settings.image_allowed_hosts,
        image_roots=settings.image_roots,
        image_model=settings.image_model,
        image_tensor=settings.image_tensor,
        color_vectorizer=color_vectorizer() if settings.color_vectors else None,
        meter=IngestMeter(settings.redis_url, role),
    )


# image vectors, decode errors and colour vectors (empty without a colour vectorizer), by hash
Embedded = tuple[dict[str, np.ndarray], dict[str, str], dict[str, np.ndarray]]
Items = Sequence[tuple[str, str, bytes]]  # (hash, source, bytes) of images to embed

_WORKER_VECTORIZER: ImageVectorizer | None = None
_WORKER_COLOR: ImageVectorizer | None = None
CRASHED = "the worker process died while decoding or embedding this image"
MIN_CHUNK = 4  # images per worker below which another process is not worth starting


def _init_worker(model: str, tensor: str | None, color: bool = False) -> None:
    """Load the model once per worker; the worker stays single-threaded (one core each)."""
    global _WORKER_VECTORIZER, _WORKER_COLOR
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    _WORKER_VECTORIZER = create_image_vectorizer(model, tensor)
    _WORKER_COLOR = color_vectorizer() if color else None


def embed_in_worker(items: Items) -> Embedded:
    """The job a worker runs: the pipeline's own decode-and-embed step."""
    from indexer.pipeline import embed_blobs

    assert _WORKER_VECTORIZER is not None, "worker started without _init_worker"
    return embed_blobs(_WORKER_VECTORIZER, items, _WORKER_COLOR)


class ImagePool:
    """``workers`` processes that decode and embed images, each with its own model.

    Processes start with the first job, no more than that job can keep busy (at least
    ``MIN_CHUNK`` images each), so a small catalogue costs no idle model copies. Jobs are
    chunks of a batch, so a batch spreads over every worker. A worker that dies
    (a hostile image crashing a decoder) costs only the images that crash it again when
    retried one at a time in a fresh pool; they are reported as image errors.
    """

    def __init__(
        self,
        model: str,
        tensor: str | None,
        workers: int,
        chunk: int = 16,
        job: Callable[[Items], Embedded] = embed_in_worker,
        color: bool = False,
    ) -> None:
        self.workers, self.chunk, self._job = max(1, workers), max(1, chunk), job
        self._initargs = (model, tensor, color)
        self._started: ProcessPoolExecutor | None = None

    @property
    def _executor(self) -> ProcessPoolExecutor:
        if self._started is None:
            self._started = self._start()
        return self._started

    def _start(self) -> ProcessPoolExecutor:
        # spawn, not fork: the parent holds threads (tantivy, torch) that fork would copy mid-lock
        return ProcessPoolExecutor(
            self.workers,
            mp_context=get_context("spawn"),
            initializer=_init_worker,
            initargs=self._initargs,
        )

    def submit(self, items: Items) -> Callable[[], Embedded]:
        """Start embedding ``items``; the returned function waits for and merges the results."""
        if self._started is None:
            self.workers = min(self.workers, max(1, len(items) // MIN_CHUNK))
        size = min(self.chunk, max(1, -(-len(items) // self.workers)))
        chunks = [list(items[i : i + size]) for i in range(0, len(items), size)]
        jobs = [(c, self._submit(c)) for c in chunks]

        def wait() -> Embedded:
            vectors: dict[str, np.ndarray] = {}
            errors: dict[str, str] = {}
            colors: dict[str, np.ndarray] = {}
            for chunk_items, future in jobs:
                try:
                    got = future.result() if future is not None else self._one_by_one(chunk_items)
                except BrokenProcessPool:
                    got = self._one_by_one(chunk_items)
                vectors.update(got[0])
                errors.update(got[1])
                colors.update(got[2])
            return vectors, errors, colors

        return wait

    def _submit(self, items: Items) -> Future[Embedded] | None:
        try:
            return self._executor.submit(self._job, items)
        except BrokenProcessPool:
            return None  # waited for one by one in a fresh pool

    def _restart(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._started = self._start()

    def _one_by_one(self, items: Items) -> Embedded:
        vectors: dict[str, np.ndarray] = {}
        errors: dict[str, str] = {}
        colors: dict[str, np.ndarray] = {}
        for item in items:
            for attempt in range(2):  # the pool may be broken by another chunk: retry once
                try:
                    got = self._executor.submit(self._job, [item]).result()
                except BrokenProcessPool:
                    self._restart()
                    if attempt == 1:
                        errors[item[0]] = CRASHED
                    continue
                vectors.update(got[0])
                errors.update(got[1])
                colors.update(got[2])
                break
        return vectors, errors, colors

    def close(self) -> None:
        if self._started is not None:
            self._started.shutdown(wait=True, cancel_futures=True)
            self._started = None

    def __enter__(self) -> ImagePool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
