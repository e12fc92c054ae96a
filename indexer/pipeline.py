"""The pure indexing pipeline for one batch of changed records: documents upserted, a report out.

``indexer.run.ingest`` drives it (in the CLI, the API and a Celery worker alike) after it has
dropped the records whose fingerprint is current. Every remaining image is read and hashed;
only images whose hash has no vector yet for the current model are decoded and embedded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from indexer.context import Embedded, ImagePool, IndexContext
from lookalike.attributes import AttributeEncoder, load_encoder
from lookalike.documents import Document, ImageEntry, ProductFields, catalogue_fields
from lookalike.errors import ImageError
from lookalike.fingerprints import record_fingerprint, stored_fingerprint
from lookalike.images import decode_image, hash_bytes, read_bytes
from lookalike.records import ProductRecord
from lookalike.vectorizers.base import ImageVectorizer
from lookalike.vectorizers.baselines import COLOR_SPACE
from lookalike.vectors import unit_mean

_IO_THREADS = 8


@dataclass
class BatchReport:
    """What one batch did; reports add up across batches."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    embedded_images: int = 0
    reused_images: int = 0
    image_errors: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)

    def add(self, other: BatchReport) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.embedded_images += other.embedded_images
        self.reused_images += other.reused_images
        self.image_errors.extend(other.image_errors)
        self.failed.extend(other.failed)

    def to_dict(self) -> dict[str, object]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "embedded_images": self.embedded_images,
            "reused_images": self.reused_images,
            "image_errors": self.image_errors,
            "failed": self.failed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> BatchReport:
        return cls(**data)  # type: ignore[arg-type]


def product_text(record: ProductRecord | ProductFields) -> str:
    """The text a product is embedded by: title first, then its labels, then the description."""
    labels = " ".join(v for v in (record.brand, record.category, record.color) if v)
    parts = [record.title, labels, record.description[:1000]]
    return ". ".join(p for p in parts if p)


def _fetch(ctx: IndexContext, source: str) -> tuple[str, bytes | ImageError]:
    """One image's bytes or its error; nothing a source can trigger escapes as an exception."""
    try:
        data = read_bytes(
            source,
            timeout=ctx.image_timeout,
            max_bytes=ctx.image_max_bytes,
            allowed_hosts=ctx.allowed_hosts,
            resolve=ctx.resolve,
            roots=ctx.image_roots,
        )
        return source, data
    except ImageError as exc:
        return source, exc
    except Exception as exc:  # noqa: BLE001 - a hostile source must cost one image, not a batch
        return source, ImageError(f"cannot read image {source}: {exc!r}", source=source)


def embed_blobs(
    vectorizer: ImageVectorizer,
    items: Sequence[tuple[str, str, bytes]],
    color: ImageVectorizer | None = None,
) -> Embedded:
    """Decode and embed images (``items``: hash, source, bytes); vectors, errors and colour
    vectors by hash.

    The one place images become vectors: in this process, or in a worker of an
    :class:`~indexer.context.ImagePool` (module level, so it pickles). The ``color``
    vectorizer reads the images already decoded for the image model.
    """
    vectors: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}
    colors: dict[str, np.ndarray] = {}
    size = max(1, vectorizer.batch_size)
    for start in range(0, len(items), size):
        chunk, images = [], []
        for digest, source, data in items[start : start + size]:
            try:
                images.append(decode_image(data, source))
                chunk.append(digest)
            except ImageError as exc:
                errors[digest] = exc.message
        if images:
            matrix = vectorizer.embed_images(images)
            vectors.update(zip(chunk, matrix, strict=True))
            if color is not None:
                colors.update(zip(chunk, color.embed_images(images), strict=True))
    return vectors, errors, colors


def text_vectors(records: Sequence[ProductRecord], ctx: IndexContext) -> np.ndarray:
    """The batch's text vectors, embedding only texts that changed.

    A record that changed elsewhere (a price, an image) keeps its stored text vector when its
    stored text and text model tag are the current ones: one engine read instead of a model run.
    """
    embedder = ctx.text_embedder
    assert embedder is not None
    texts = [product_text(r) for r in records]
    tag = embedder.tag
    stored = ctx.engine.get([r.id for r in records])
    same = [
        r.id
        for r, text in zip(records, texts, strict=True)
        if (old := stored.get(r.id)) is not None
        and old.models.get("text") == tag
        and product_text(old) == text
    ]
    kept = ctx.engine.stored_vectors(same, "text", tag) if same else {}
    kept = {k: v for k, v in kept.items() if v.shape == (embedder.dim,)}
    todo = [i for i, r in enumerate(records) if r.id not in kept]
    out = np.empty((len(records), embedder.dim), np.float32)
    if todo:
        out[todo] = embedder.embed_texts([texts[i] for i in todo])
    for i, r in enumerate(records):
        if r.id in kept:
            out[i] = kept[r.id]
    return out


@dataclass
class PreparedBatch:
    """A batch whose images are read, hashed and (maybe still) being embedded.

    ``deferred`` hashes are being embedded for the previous, still unfinished batch: they are
    taken from it when this batch finishes, as they would have come from the engine's cache
    had the two batches run one after the other.
    """

    records: Sequence[ProductRecord]
    fetched: dict[str, bytes | ImageError]
    hash_of: dict[str, str]
    cached: dict[str, np.ndarray]
    cached_colors: dict[str, np.ndarray]
    deferred: set[str]
    result: Callable[[], Embedded]
    # set by finish_batch: every vector and decode error of this batch, by image hash
    resolved: Embedded | None = None

    def pending_hashes(self) -> set[str]:
        """Hashes whose vector this batch will know only once it is finished."""
        return set(self.hash_of.values()) - set(self.cached)


def start_batch(
    records: Sequence[ProductRecord],
    ctx: IndexContext,
    pool: ImagePool | None = None,
    previous: PreparedBatch | None = None,
) -> PreparedBatch:
    """Read and hash every image, look up cached vectors, start embedding the rest.

    With a ``pool`` the embedding runs in its worker processes while this process goes on;
    ``previous`` is a batch still in flight whose images are not embedded twice.
    """
    sources = sorted({s for r in records for s in r.images})
    fetched: dict[str, bytes | ImageError] = {}
    if sources:
        with ThreadPoolExecutor(min(_IO_THREADS, len(sources))) as threads:
            fetched = dict(threads.map(lambda s: _fetch(ctx, s), sources))
    hash_of: dict[str, str] = {}
    blobs: dict[str, tuple[str, bytes]] = {}
    for source, got in fetched.items():
        if isinstance(got, bytes):
            digest = hash_bytes(got)
            hash_of[source] = digest
            blobs[digest] = (source, got)
    cached = ctx.engine.cached_image_vectors(list(blobs), ctx.image_vectorizer.tag)
    colors: dict[str, np.ndarray] = {}
    if ctx.color_vectorizer is not None and cached:
        colors = ctx.engine.cached_image_vectors(list(cached), ctx.color_vectorizer.tag)
        # an image cached before the colour signal existed is decoded (and embedded) again
        cached = {h: v for h, v in cached.items() if h in colors}
    in_flight = previous.pending_hashes() if previous is not None else set()
    deferred = {h for h in blobs if h not in cached and h in in_flight}
    todo = [(h, *blobs[h]) for h in blobs if h not in cached and h not in deferred]
    if pool is not None and len(todo) > 1:  # one image is not worth a round trip
        result = pool.submit(todo)
    else:
        done = embed_blobs(ctx.image_vectorizer, todo, ctx.color_vectorizer)
        result = partial(_ready, done)
    return PreparedBatch(records, fetched, hash_of, cached, colors, deferred, result)


def _ready(done: Embedded) -> Embedded:
    return done


def finish_batch(
    prepared: PreparedBatch,
    ctx: IndexContext,
    encoder: AttributeEncoder | None = None,
    previous: PreparedBatch | None = None,
) -> BatchReport:
    """Wait for the batch's vectors, embed its texts, build the documents and upsert them."""
    report = BatchReport()
    records = prepared.records
    if not records:
        return report
    encoder = encoder or load_encoder(ctx.engine)
    fetched, hash_of, cached = prepared.fetched, prepared.hash_of, prepared.cached
    embedded, errors, embedded_colors = prepared.result()
    vectors: dict[str, np.ndarray] = {**cached, **embedded}
    colors: dict[str, np.ndarray] = {**prepared.cached_colors, **embedded_colors}
    decode_errors = dict(errors)
    reused = len(cached)
    if prepared.deferred:
        if previous is None or previous.resolved is None:
            raise RuntimeError("a batch with deferred images must finish after its predecessor")
        before, before_errors, before_colors = previous.resolved
        for digest in prepared.deferred:
            if digest in before:
                vectors[digest] = before[digest]
                if digest in before_colors:
                    colors[digest] = before_colors[digest]
                reused += 1
            else:
                decode_errors[digest] = before_errors[digest]
    prepared.resolved = (vectors, decode_errors, colors)
    report.reused_images = reused
    report.embedded_images = len(embedded)
    tag = ctx.image_vectorizer.tag
    fingerprint_models = ctx.models()

    texts: np.ndarray | None = None
    if ctx.text_embedder is not None:
        texts = text_vectors(records, ctx)

    docs: list[Document] = []
    for i, record in enumerate(records):
        models = {"image": tag}
        entries: list[ImageEntry] = []
        for position, source in enumerate(record.images):
            entry = ImageEntry(position=position, uri=source, hash=hash_of.get(source))
            fetched_result = fetched[source]
            if isinstance(fetched_result, ImageError):
                entry.error = fetched_result.message
            elif entry.hash in decode_errors:
                entry.error = decode_errors[entry.hash]
            else:
                entry.vector = vectors[entry.hash]  # type: ignore[index]
                entry.color = colors.get(entry.hash)  # type: ignore[arg-type]
            if entry.error:
                report.image_errors.append({"id": record.id, "image": source, "error": entry.error})
            entries.append(entry)
        doc_vectors: dict[str, np.ndarray] = {}
        palette = [e.color for e in entries if e.color is not None]
        if palette and ctx.color_vectorizer is not None:
            doc_vectors[COLOR_SPACE] = unit_mean(np.stack(palette))
            models[COLOR_SPACE] = ctx.color_vectorizer.tag
        if texts is not None and ctx.text_embedder is not None:
            doc_vectors["text"] = texts[i]
            models["text"] = ctx.text_embedder.tag
        attributes = encoder.encode(record)
        if np.any(attributes):
            doc_vectors["attributes"] = attributes
            models["attributes"] = encoder.tag
        docs.append(
            Document(
                **catalogue_fields(record),
                images=entries,
                vectors=doc_vectors,
                models=models,
                fingerprint=stored_fingerprint(
                    record_fingerprint(record.model_dump(mode="json"), fingerprint_models),
                    complete=not any(e.error for e in entries),
                ),
            )
        )
    # Engine errors propagate: the in-process caller reports the batch, a Celery task retries.
    upserted = ctx.engine.upsert(docs)
    report.inserted, report.updated, report.unchanged = (
        upserted.inserted,
        upserted.updated,
        upserted.unchanged,
    )
    return report
