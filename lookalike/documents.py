"""What engines store: a product document with its per-image and per-space vectors."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lookalike.filters import ATTRIBUTE_PREFIX, normalize_value


@dataclass
class ImageEntry:
    """One image of a product: where it came from, its content hash, its vector or its error."""

    position: int
    uri: str
    hash: str | None = None
    vector: np.ndarray | None = None  # float32 [dim], L2-normalised; None when it failed
    error: str | None = None
    # the colour/style vector of the same image (``color`` space), cached by hash like ``vector``
    color: np.ndarray | None = None


CATALOGUE_FIELDS = (
    "id",
    "title",
    "description",
    "brand",
    "category",
    "color",
    "price",
    "attributes",
)


def catalogue_fields(source: object) -> dict[str, Any]:
    """The catalogue fields (all but images) of a record, document or stored product."""
    return {name: getattr(source, name) for name in CATALOGUE_FIELDS}


@dataclass
class ProductFields:
    """The catalogue fields every product carries, stored and read back alike."""

    id: str
    title: str = ""
    description: str = ""
    brand: str | None = None
    category: str | None = None
    color: str | None = None
    price: float | None = None
    attributes: dict[str, list[str]] = field(default_factory=dict)
    images: list[ImageEntry] = field(default_factory=list)
    models: dict[str, str] = field(default_factory=dict)


@dataclass
class Document(ProductFields):
    """A product as handed to an engine by the indexing pipeline.

    ``vectors`` holds product-level vectors by space (``"text"``, ``"attributes"``);
    image vectors live on each :class:`ImageEntry` and the engine derives the product's
    visual vector (``"image"`` space) as the L2-normalised mean of its image vectors.
    The ``"color"`` space (palette, from the same decoded images) is the unit mean of the
    images' ``color`` vectors, set by the pipeline like any product-level space.
    ``models`` tags each space with ``"name@version"`` of the model that produced it.
    ``fingerprint`` is a hash of everything above: an upsert whose fingerprint equals the
    stored one changes nothing. Left empty, every engine uses :meth:`content_fingerprint`,
    so the same document upserted twice without one is written once on every engine.
    """

    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    fingerprint: str = ""

    def keyword_terms(self) -> dict[str, set[str]]:
        """Normalised values of every keyword field, as filters see them."""
        terms: dict[str, set[str]] = {}
        for name in ("brand", "category", "color"):
            value = getattr(self, name)
            if value:
                terms[name] = {normalize_value(value)}
        for key, values in self.attributes.items():
            terms[ATTRIBUTE_PREFIX + key] = {normalize_value(v) for v in values}
        return terms

    def scalar_json(self) -> str:
        """The scalar fields as canonical JSON (what the fingerprint and the store hash)."""
        return json.dumps(
            {
                "title": self.title,
                "description": self.description,
                "brand": self.brand,
                "category": self.category,
                "color": self.color,
                "price": self.price,
                "attributes": {k: list(v) for k, v in self.attributes.items()},
                "models": dict(self.models),
            },
            sort_keys=True,
            ensure_ascii=False,
        )

    def content_fingerprint(self) -> str:
        """A hash of the fields, images and vectors, for documents given no fingerprint."""
        h = hashlib.sha256()
        h.update(self.scalar_json().encode())
        for img in sorted(self.images, key=lambda i: i.position):
            h.update(json.dumps([img.position, img.uri, img.hash, img.error]).encode())
            if img.vector is not None:
                h.update(np.asarray(img.vector, dtype=np.float32).tobytes())
        for space in sorted(self.vectors):
            h.update(space.encode())
            h.update(np.asarray(self.vectors[space], dtype=np.float32).tobytes())
        return "auto:" + h.hexdigest()

    def effective_fingerprint(self) -> str:
        """The given fingerprint, or the content hash when none was given."""
        if isinstance(self.fingerprint, str) and self.fingerprint:
            return self.fingerprint
        return self.content_fingerprint()


@dataclass
class Product(ProductFields):
    """A stored product as read back (no vectors), with bookkeeping."""

    revision: int = 0  # bumped on every real change; 1 after the first index
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """An engine result: a product id with the engine's score (BM25 or cosine)."""

    id: str
    score: float
