"""The pure indexing pipeline: records in, documents upserted, a report out.

The CLI calls it in-process and the Celery task calls it in a worker, so both paths run
the same code. Every image is read and hashed; only images whose hash has no vector yet
for the current model are decoded and embedded. A product whose fingerprint (record,
image hashes, model tags) is unchanged is left alone by the engine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from indexer.context import IndexContext
from indexer.vocabulary import load_encoder
from lookalike.attributes import AttributeEncoder
from lookalike.documents import Document, ImageEntry, catalogue_fields
from lookalike.errors import ImageError
from lookalike.images import decode_image, fetch_bytes, hash_bytes
from lookalike.records import ProductRecord

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


def product_text(record: ProductRecord) -> str:
    """The text a product is embedded by: title first, then its labels, then the description."""
    labels = " ".join(v for v in (record.brand, record.category, record.color) if v)
    parts = [record.title, labels, record.description[:1000]]
    return ". ".join(p for p in parts if p)


def _fetch(ctx: IndexContext, source: str) -> tuple[str, bytes | ImageError]:
    """One image's bytes or its error; nothing a source can trigger escapes as an exception."""
    try:
        data = fetch_bytes(
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


def _embed_missing(
    ctx: IndexContext,
    blobs: dict[str, tuple[str, bytes]],
    cached: dict[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Decode and embed images whose hash has no vector yet (``blobs``: hash -> source, bytes);
    errors by hash."""
    vectors: dict[str, np.ndarray] = dict(cached)
    errors: dict[str, str] = {}
    todo = [h for h in blobs if h not in cached]
    size = max(1, ctx.image_vectorizer.batch_size)
    for start in range(0, len(todo), size):
        chunk, images = [], []
        for digest in todo[start : start + size]:
            try:
                source, data = blobs[digest]
                images.append(decode_image(data, source))
                chunk.append(digest)
            except ImageError as exc:
                errors[digest] = exc.message
        if images:
            matrix = ctx.image_vectorizer.embed_images(images)
            vectors.update(zip(chunk, matrix, strict=True))
    return vectors, errors


def fingerprint(record: ProductRecord, hashes: Sequence[str | None], models: dict[str, str]) -> str:
    payload = json.dumps(
        [record.model_dump(mode="json"), list(hashes), sorted(models.items())],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def index_batch(
    records: Sequence[ProductRecord],
    ctx: IndexContext,
    encoder: AttributeEncoder | None = None,
) -> BatchReport:
    """Embed and upsert one batch of records; one bad image never fails its product."""
    report = BatchReport()
    if not records:
        return report
    encoder = encoder or load_encoder(ctx.engine)
    sources = sorted({s for r in records for s in r.images})
    with ThreadPoolExecutor(min(_IO_THREADS, len(sources))) as pool:
        fetched = dict(pool.map(lambda s: _fetch(ctx, s), sources))

    hash_of: dict[str, str] = {}
    blobs: dict[str, tuple[str, bytes]] = {}
    for source, result in fetched.items():
        if isinstance(result, bytes):
            digest = hash_bytes(result)
            hash_of[source] = digest
            blobs[digest] = (source, result)
    tag = ctx.image_vectorizer.tag
    cached = ctx.engine.cached_image_vectors(list(blobs), tag)
    vectors, decode_errors = _embed_missing(ctx, blobs, cached)
    report.reused_images = len(cached)
    report.embedded_images = len(vectors) - len(cached)

    texts: np.ndarray | None = None
    if ctx.text_embedder is not None:
        texts = ctx.text_embedder.embed_texts([product_text(r) for r in records])

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
            if entry.error:
                report.image_errors.append({"id": record.id, "image": source, "error": entry.error})
            entries.append(entry)
        doc_vectors: dict[str, np.ndarray] = {}
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
                fingerprint=fingerprint(record, [e.hash for e in entries], models),
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
