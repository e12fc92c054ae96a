"""Writing a field value back to stored products, marked as inferred, with its provenance.

A stored product is rebuilt into a :class:`~lookalike.documents.Document` from what the engine
keeps: its catalogue fields, its image entries with their cached vectors (by content hash and
image model tag) and its other product vectors as upserted (``Engine.stored_vectors``), with
the same model tags. Only the field changes, plus:

* ``attributes["inferred"]`` lists the fields whose value was inferred (filterable as
  ``inferred=color``); it is left out of the attribute-similarity vector;
* the provenance (value, source, confidence, neighbours, time) is kept by the engine
  (``Engine.record_provenance``), one entry per product and field.

The fingerprint is the indexer's (``lookalike.fingerprints``), so re-indexing an export of the
updated catalogue changes nothing, while re-indexing the original catalogue (still without the
value) overwrites it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from lookalike.attributes import AttributeEncoder, fit_vocabulary
from lookalike.documents import (
    CATALOGUE_FIELDS,
    Document,
    ImageEntry,
    Product,
    catalogue_fields,
)
from lookalike.engines import Engine
from lookalike.errors import InvalidInput, NotFound
from lookalike.fingerprints import record_fingerprint, stored_fingerprint
from lookalike.records import ProductRecord

KEYWORD_FIELDS = ("brand", "category", "color")
INFERRED_KEY = "inferred"
_ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")  # as filters accept a bare key
MAX_VALUE_CHARS = 200


def check_field(field: str) -> str:
    """A field that can be filled: brand, category, color or an attribute key."""
    if field in KEYWORD_FIELDS:
        return field
    if field == INFERRED_KEY or field in ("id", "title", "description", "price", "images"):
        raise InvalidInput(
            f"field {field!r} cannot be filled; use brand, category, color or an attribute key"
        )
    if not isinstance(field, str) or not _ATTRIBUTE_KEY.match(field):
        raise InvalidInput(f"invalid attribute key {field!r}: letters, digits, _ and -")
    return field


def check_value(value: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > MAX_VALUE_CHARS:
        raise InvalidInput(f"value must be 1-{MAX_VALUE_CHARS} characters, got {value!r}")
    return text


def field_values(product: Product, field: str) -> list[str]:
    """The product's values of a field ([] when missing or empty)."""
    if field in KEYWORD_FIELDS:
        value = getattr(product, field)
        return [value] if value else []
    return [v for v in product.attributes.get(field, []) if v]


def provenance(engine: Engine, product_id: str) -> dict[str, Any]:
    """The stored provenance of a product's inferred values, by field ({} when none)."""
    return engine.provenance([product_id]).get(product_id, {})


def _record(product: Product, field: str, value: str) -> dict[str, Any]:
    """The product's catalogue record with the new value (as ``ProductRecord`` dumps it)."""
    fields = catalogue_fields(product)
    attributes = {k: list(v) for k, v in product.attributes.items()}
    if field in KEYWORD_FIELDS:
        fields[field] = value
    else:
        attributes[field] = [value]
    attributes[INFERRED_KEY] = sorted(set(attributes.get(INFERRED_KEY, [])) | {field})
    fields["attributes"] = attributes
    uris = [i.uri for i in sorted(product.images, key=lambda i: i.position) if i.uri]
    if not uris:  # stored without images (not from a catalogue): nothing more to validate
        return {**fields, "images": []}
    return ProductRecord(**fields, images=uris).model_dump(mode="json")


def _document(engine: Engine, product: Product, record: dict[str, Any]) -> Document:
    """The stored product as a document with the new fields, keeping vectors and model tags."""
    models = dict(product.models)
    image_tag = models.get("image")
    hashes = [i.hash for i in product.images if i.hash and not i.error]
    cached = engine.cached_image_vectors(hashes, image_tag) if image_tag and hashes else {}
    images = [
        ImageEntry(
            position=i.position,
            uri=i.uri,
            hash=i.hash,
            vector=cached.get(i.hash) if i.hash and not i.error else None,
            error=i.error or (None if not i.hash or i.hash in cached else "vector not cached"),
        )
        for i in product.images
    ]
    vectors: dict[str, np.ndarray] = {}
    for space, tag in models.items():
        if space in ("image", "attributes"):
            continue
        found = engine.stored_vectors([product.id], space, tag).get(product.id)
        if found is not None:
            vectors[space] = found
    models.pop("attributes", None)
    attributes = record.get("attributes") or {}
    similarity_view = ProductRecord.model_construct(
        **{**record, "attributes": {k: v for k, v in attributes.items() if k != INFERRED_KEY}}
    )
    encoder = fit_vocabulary(engine, [similarity_view])
    encoded = encoder.encode(similarity_view)
    if np.any(encoded):
        vectors["attributes"] = encoded
        models["attributes"] = encoder.tag
    # the models the indexer would fingerprint this record with (lookalike.fingerprints)
    indexed_with = {"image": models.get("image", ""), "attributes": AttributeEncoder().tag}
    if "text" in models:
        indexed_with["text"] = models["text"]
    if not any(img.vector is not None for img in images):
        models.pop("image", None)
    complete = bool(images) and all(img.vector is not None for img in images)
    return Document(
        **{name: record[name] for name in CATALOGUE_FIELDS},
        images=images,
        vectors=vectors,
        models=models,
        fingerprint=stored_fingerprint(record_fingerprint(record, indexed_with), complete),
    )


def write_values(
    engine: Engine,
    ids: Sequence[str],
    field: str,
    value: str,
    *,
    source: str,
    details: dict[str, dict[str, Any]] | None = None,
) -> int:
    """Set ``field`` to ``value`` on every product of ``ids``, marked inferred; returns how many.

    ``details`` adds per-product provenance (confidence, neighbours). Unknown ids fail the whole
    call before anything is written.
    """
    field, value = check_field(field), check_value(value)
    ids = list(dict.fromkeys(ids))
    if not ids:
        raise InvalidInput("no product ids given")
    products = engine.get(ids)
    missing = [pid for pid in ids if pid not in products]
    if missing:
        raise NotFound(f"unknown product ids: {', '.join(missing[:10])}", ids=missing[:100])
    docs = [_document(engine, products[pid], _record(products[pid], field, value)) for pid in ids]
    engine.upsert(docs)
    stamp = time.time()
    base = {"value": value, "source": source, "at": stamp}
    entries = {pid: {field: {**base, **(details or {}).get(pid, {})}} for pid in ids}
    engine.record_provenance(entries)  # one write for the batch (was one meta row per product)
    engine.refresh()
    return len(ids)
