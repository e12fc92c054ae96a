"""Product documents <-> ``_source`` JSON, and the image-vector cache documents."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from lookalike.documents import Document, ImageEntry, Product
from lookalike.engines.opensearch.mapping import vector_field
from lookalike.engines.opensearch.queries import filter_term
from lookalike.errors import EngineError, InvalidInput
from lookalike.vectors import unit_mean

JsonDict = dict[str, Any]


def doc_vectors(doc: Document) -> dict[str, np.ndarray]:
    """Product-level vectors by space: ``image`` is the unit mean of the image vectors."""
    out = {space: np.asarray(v, dtype=np.float32).ravel() for space, v in doc.vectors.items()}
    image_rows = [i.vector for i in doc.images if i.vector is not None]
    if image_rows:
        out["image"] = unit_mean(np.stack(image_rows))
    for space, vec in list(out.items()):
        if vec.size == 0 or not np.all(np.isfinite(vec)):
            raise InvalidInput(f"product {doc.id!r}: {space} vector is not finite", id=doc.id)
        if not np.any(vec):
            del out[space]  # cosine is undefined for a zero vector: the product has none
    for image in doc.images:
        if image.vector is not None and not np.all(np.isfinite(image.vector)):
            raise InvalidInput(f"product {doc.id!r}: image vector is not finite", id=doc.id)
    if doc.price is not None and not math.isfinite(doc.price):
        raise InvalidInput(f"product {doc.id!r}: price is not finite", id=doc.id)
    return out


def fit_dimension(vector: np.ndarray, dim: int | None, space: str = "") -> np.ndarray:
    """Zero-pad a vector to the index's dimension (exact for cosine); longer ones cannot fit."""
    if dim is None or vector.size == dim:
        return vector
    if vector.size < dim:
        return np.concatenate([vector, np.zeros(dim - vector.size, dtype=np.float32)])
    raise EngineError(
        f"{space} vectors have {vector.size} values but the index holds {dim}: "
        "run `lookalike reindex` to rebuild the index with room for them",
        space=space,
    )


def to_source(
    doc: Document, revision: int, updated_at: float, dims: dict[str, int] | None = None
) -> JsonDict:
    """The stored JSON of a product (vectors as float lists, keyword values normalised)."""
    terms = sorted(
        filter_term(field, value)
        for field, values in doc.keyword_terms().items()
        for value in values
    )
    source: JsonDict = {
        "id": doc.id,
        "title": doc.title,
        "description": doc.description,
        "brand": doc.brand,
        "category": doc.category,
        "color": doc.color,
        "attribute_text": " ".join(v for vs in doc.attributes.values() for v in vs),
        "filter_terms": terms,
        "price": doc.price,
        "attributes": {k: list(v) for k, v in doc.attributes.items()},
        "images": [
            {
                "position": i.position,
                "uri": i.uri,
                "hash": i.hash,
                "error": i.error,
                "vector": None if i.vector is None else [float(x) for x in i.vector],
            }
            for i in doc.images
        ],
        "models": dict(doc.models),
        "fingerprint": doc.effective_fingerprint(),
        "revision": revision,
        "updated_at": updated_at,
    }
    for space, vec in sorted(doc_vectors(doc).items()):
        vec = fit_dimension(vec, (dims or {}).get(space), space)
        source[vector_field(space)] = [float(x) for x in vec]
    return source


def to_product(source: JsonDict) -> Product:
    """A stored product read back from ``_source`` (no vectors)."""
    return Product(
        id=source["id"],
        title=source.get("title") or "",
        description=source.get("description") or "",
        brand=source.get("brand"),
        category=source.get("category"),
        color=source.get("color"),
        price=source.get("price"),
        attributes={k: list(v) for k, v in (source.get("attributes") or {}).items()},
        images=[
            ImageEntry(i["position"], i["uri"], i.get("hash"), None, i.get("error"))
            for i in source.get("images") or []
        ],
        models=dict(source.get("models") or {}),
        revision=int(source.get("revision") or 0),
        updated_at=float(source.get("updated_at") or 0.0),
    )


def image_matrix(source: JsonDict) -> np.ndarray | None:
    """Per-image vectors ``[m, dim]`` from ``_source`` in image-position order (as the
    embedded engine answers: rows are the images that have a vector); None when none has."""
    images = sorted(source.get("images") or [], key=lambda i: i.get("position", 0))
    rows = [i["vector"] for i in images if i.get("vector") is not None]
    return np.asarray(rows, dtype=np.float32) if rows else None


def cache_id(image_hash: str, model: str) -> str:
    """Deterministic ``_id`` of a cached image vector (bounded length whatever the inputs)."""
    return hashlib.sha256(f"{model}\x00{image_hash}".encode()).hexdigest()


def cache_entries(doc: Document) -> list[tuple[str, JsonDict]]:
    """Image-cache documents for every embedded image of a product (and its colour vector)."""
    model = doc.models.get("image", "")
    out = [
        (
            cache_id(i.hash, model),
            {"hash": i.hash, "model": model, "vector": [float(x) for x in i.vector]},
        )
        for i in doc.images
        if i.hash and i.vector is not None
    ]
    color = doc.models.get("color", "")  # per-image colour vectors, cached the same way
    out += [
        (
            cache_id(i.hash, color),
            {"hash": i.hash, "model": color, "vector": [float(x) for x in i.color]},
        )
        for i in doc.images
        if i.hash and i.color is not None and color
    ]
    return out
