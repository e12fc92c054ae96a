"""Validation of incoming documents and the row formats shared by the store and the indexes.

Everything is checked before the write transaction starts, so a bad document anywhere in a
batch rejects the whole batch with a clear :class:`~lookalike.errors.InvalidInput` and
nothing is written.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import numpy as np

from lookalike.documents import Document, ImageEntry, Product
from lookalike.errors import InvalidInput
from lookalike.vectors import unit as unit_vector
from lookalike.vectors import unit_mean

IMAGE_SPACE = "image"
COLOR_SPACE = "color"  # per-image colour vectors share the image cache (keyed hash, model)
MAX_ID_CHARS = 512


def token(field_name: str, normalized: str) -> str:
    """The keyword token ``field=value`` indexed for filters (value already normalised)."""
    return f"{field_name}={normalized}"


def doc_tokens(doc: Document) -> list[str]:
    """Every filter token of a document, sorted (same normalisation as the filters)."""
    return sorted(token(f, v) for f, values in doc.keyword_terms().items() for v in values)


def to_blob(vector: np.ndarray) -> bytes:
    """float32 little-endian bytes of a vector."""
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes, dim: int) -> np.ndarray:
    """A float32 vector from its stored bytes (a copy, safe to keep)."""
    return np.frombuffer(blob, dtype="<f4", count=dim).astype(np.float32)


@dataclass
class PreparedDoc:
    """A validated document, flattened into what the SQLite rows need."""

    id: str
    doc_json: str
    terms_json: str
    price: float | None
    fingerprint: str
    images: list[tuple[int, str, str | None, str | None, int]]  # position, uri, hash, error,
    # has_vector
    image_vectors: list[tuple[str, str, int, bytes]]  # hash, model, dim, blob
    vectors: list[tuple[str, str, int, bytes]] = field(default_factory=list)  # space, model, ..
    models: dict[str, str] = field(default_factory=dict)


def _fail(doc_id: object, message: str) -> InvalidInput:
    return InvalidInput(f"document {doc_id!r}: {message}", id=str(doc_id))


def _check_vector(doc_id: str, where: str, value: object) -> np.ndarray:
    """A finite, non-empty, 1-d floating vector, returned as unit float32."""
    if not isinstance(value, np.ndarray):
        raise _fail(doc_id, f"{where} must be a numpy array, got {type(value).__name__}")
    if value.dtype.kind != "f":
        raise _fail(doc_id, f"{where} has dtype {value.dtype}; expected a floating dtype")
    if value.ndim != 1 or value.shape[0] == 0:
        raise _fail(doc_id, f"{where} must be 1-d and non-empty, got shape {value.shape}")
    vec = value.astype(np.float32)
    if not np.isfinite(vec).all():
        raise _fail(doc_id, f"{where} contains NaN or infinity")
    return unit_vector(vec)


def _check_text(doc_id: str, name: str, value: object, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise _fail(doc_id, f"{name} must be a string, got {type(value).__name__}")


def _check_model(doc_id: str, models: dict[str, str], space: str) -> str:
    tag = models.get(space)
    if not isinstance(tag, str) or not tag:
        raise _fail(doc_id, f"vectors of space {space!r} need a model tag in models[{space!r}]")
    return tag


def _check_fields(doc: Document) -> float | None:
    """Scalar fields and attributes; returns the price as float."""
    if not isinstance(doc.id, str) or not doc.id or len(doc.id) > MAX_ID_CHARS:
        raise _fail(doc.id, f"id must be a non-empty string of at most {MAX_ID_CHARS} chars")
    _check_text(doc.id, "title", doc.title, optional=False)
    _check_text(doc.id, "description", doc.description, optional=False)
    for name in ("brand", "category", "color"):
        _check_text(doc.id, name, getattr(doc, name), optional=True)
    if not isinstance(doc.attributes, dict):
        raise _fail(doc.id, "attributes must be a dict of lists of strings")
    for key, values in doc.attributes.items():
        if not isinstance(key, str) or not key:
            raise _fail(doc.id, f"attribute key {key!r} must be a non-empty string")
        if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
            raise _fail(doc.id, f"attribute {key!r} must be a list of strings")
    if not isinstance(doc.models, dict):
        raise _fail(doc.id, "models must be a dict of space -> 'name@version'")
    price = doc.price
    if price is None:
        return None
    if isinstance(price, bool) or not isinstance(price, Real) or not math.isfinite(price):
        raise _fail(doc.id, f"price must be a finite number, got {price!r}")
    return float(price)


def _prepare_images(doc: Document) -> tuple[list[Any], list[Any], list[np.ndarray]]:
    images: list[tuple[int, str, str | None, str | None, int]] = []
    cached: list[tuple[str, str, int, bytes]] = []
    unit: list[np.ndarray] = []
    positions: set[int] = set()
    for img in doc.images:
        if not isinstance(img, ImageEntry):
            raise _fail(doc.id, "images must be ImageEntry objects")
        if isinstance(img.position, bool) or not isinstance(img.position, int):
            raise _fail(doc.id, f"image position {img.position!r} must be an int")
        if img.position in positions:
            raise _fail(doc.id, f"duplicate image position {img.position}")
        positions.add(img.position)
        where = f"image {img.position}"
        if img.vector is not None:
            vec = _check_vector(doc.id, f"{where} vector", img.vector)
            if not img.hash:
                raise _fail(doc.id, f"{where} has a vector but no content hash")
            if unit and vec.shape != unit[0].shape:
                raise _fail(doc.id, f"{where} vector has dim {vec.shape[0]}, not {len(unit[0])}")
            tag = _check_model(doc.id, doc.models, IMAGE_SPACE)
            cached.append((img.hash, tag, int(vec.shape[0]), to_blob(vec)))
            unit.append(vec)
            if img.color is not None:  # the image's colour vector, cached by hash the same way
                color = _check_vector(doc.id, f"{where} color", img.color)
                color_tag = _check_model(doc.id, doc.models, COLOR_SPACE)
                cached.append((img.hash, color_tag, int(color.shape[0]), to_blob(color)))
        has_vector = int(img.vector is not None)
        images.append((img.position, str(img.uri), img.hash, img.error, has_vector))
    return images, cached, unit


def doc_json(doc: Document) -> str:
    """The stored JSON of the scalar fields (images and vectors live in their own tables)."""
    return doc.scalar_json()


def prepare(doc: Document) -> PreparedDoc:
    """Validate one document and build its rows; raises InvalidInput on anything malformed."""
    if not isinstance(doc, Document):
        raise InvalidInput(f"expected a Document, got {type(doc).__name__}")
    price = _check_fields(doc)
    images, cached, unit = _prepare_images(doc)
    vectors: list[tuple[str, str, int, bytes]] = []
    if not isinstance(doc.vectors, dict):
        raise _fail(doc.id, "vectors must be a dict of space -> numpy array")
    for space, value in sorted(doc.vectors.items()):
        if not isinstance(space, str) or not space:
            raise _fail(doc.id, f"space name {space!r} must be a non-empty string")
        if space == IMAGE_SPACE and unit:
            continue  # the image space is derived from the images below
        vec = _check_vector(doc.id, f"vectors[{space!r}]", value)
        vectors.append((space, _check_model(doc.id, doc.models, space), len(vec), to_blob(vec)))
    if unit:
        mean = unit_mean(np.stack(unit))
        tag = doc.models[IMAGE_SPACE]
        vectors.append((IMAGE_SPACE, tag, len(mean), to_blob(mean)))
    return PreparedDoc(
        id=doc.id,
        doc_json=doc_json(doc),
        terms_json=json.dumps(doc_tokens(doc), ensure_ascii=False),
        price=price,
        fingerprint=doc.effective_fingerprint(),
        images=images,
        image_vectors=cached,
        vectors=vectors,
        models={space: tag for space, tag, _, _ in vectors},
    )


def prepare_batch(docs: Any) -> list[PreparedDoc]:
    """Validate a whole batch; a repeated id keeps its last occurrence."""
    prepared: dict[str, PreparedDoc] = {}
    for doc in docs:
        p = prepare(doc)
        prepared.pop(p.id, None)
        prepared[p.id] = p
    return list(prepared.values())


def product_from_row(
    pid: str, doc_text: str, revision: int, updated_at: float, images: list[ImageEntry]
) -> Product:
    """Rebuild a :class:`Product` from its stored row."""
    d = json.loads(doc_text)
    return Product(
        id=pid,
        title=d.get("title", ""),
        description=d.get("description", ""),
        brand=d.get("brand"),
        category=d.get("category"),
        color=d.get("color"),
        price=d.get("price"),
        attributes={k: list(v) for k, v in d.get("attributes", {}).items()},
        images=images,
        models=dict(d.get("models", {})),
        revision=revision,
        updated_at=updated_at,
    )
