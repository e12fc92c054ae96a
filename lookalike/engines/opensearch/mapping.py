"""Index definitions: the JSON files under ``mappings/`` turned into request bodies.

The JSON files are the reviewed source of truth; this module only adds what depends on the
data (one ``knn_vector`` field per vector space, sized by the first vectors seen) and the
model names recorded in ``_meta``.
"""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from lookalike.errors import ConfigError

MAPPINGS_DIR = Path(__file__).resolve().parents[3] / "mappings"
VECTOR_PREFIX = "vec_"
PROJECTED_PREFIX = "proj_"  # knn_vector fields of projected spaces: proj_<space>_<tag hash>
# Spaces whose dimension grows (the attribute vocabulary): their knn_vector field is created
# with spare capacity and shorter vectors are zero-padded (exact for cosine similarity).
GROWING_SPACES = frozenset({"attributes"})
MIN_CAPACITY = 256
_SPACE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

JsonDict = dict[str, Any]


@lru_cache
def load_definition(name: str) -> JsonDict:
    """One index definition file (``products``, ``image_cache``, ``meta``), parsed once."""
    path = MAPPINGS_DIR / f"{name}.json"
    try:
        with open(path, encoding="utf-8") as fh:
            data: JsonDict = json.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read index definition {path}: {exc}", path=str(path)) from exc
    return data


def vector_field(space: str) -> str:
    """The ``knn_vector`` field holding a space's product vectors (``image`` -> ``vec_image``)."""
    if not _SPACE.match(space):
        raise ConfigError(f"invalid vector space name {space!r}", space=space)
    return VECTOR_PREFIX + space


def projected_field(space: str, tag: str) -> str:
    """The ``knn_vector`` field of a projected space: one per fitted projection (its tag's
    hash), so a refit is written beside the served one and readers switch in one step."""
    vector_field(space)  # the same name rules
    return f"{PROJECTED_PREFIX}{space}_{tag.rsplit('-', 1)[-1]}"


def projected_fields_of(fields: Iterable[str], space: str) -> list[str]:
    """The projected fields of ``space`` among ``fields`` (those of every fit so far)."""
    pattern = re.compile(re.escape(f"{PROJECTED_PREFIX}{space}_") + "[0-9a-f]{10}")
    return sorted(f for f in fields if pattern.fullmatch(f))


def projected_field_body(field: str, dim: int) -> JsonDict:
    """The ``PUT /<index>/_mapping`` body adding one projected vector field."""
    return {"properties": {field: vector_mapping(dim)}}


def models_meta_body(mapping_meta: JsonDict, models: dict[str, str]) -> JsonDict:
    """The ``PUT /<index>/_mapping`` body recording the newest model of each space in
    ``_meta.models`` (what ``Engine.space_models`` answers)."""
    meta = copy.deepcopy(mapping_meta)
    meta["models"] = dict(sorted({**meta.get("models", {}), **models}.items()))
    return {"_meta": meta}


def field_dimension(space: str, dim: int) -> int:
    """The ``knn_vector`` dimension to create for a space first seen with ``dim`` values."""
    if space not in GROWING_SPACES:
        return dim
    return max(MIN_CAPACITY, 1 << (2 * dim - 1).bit_length())


def vector_mapping(dim: int) -> JsonDict:
    """A ``knn_vector`` field of ``dim`` dimensions with the method chosen in products.json."""
    method = copy.deepcopy(load_definition("products")["knn_vector_method"])
    return {"type": "knn_vector", "dimension": int(dim), "method": method}


def products_index_body(
    dims: dict[str, int], models: dict[str, str], aliases: tuple[str, ...] = ()
) -> JsonDict:
    """The ``PUT /<index>`` body for a products index with vector fields for ``dims``."""
    data = copy.deepcopy(load_definition("products"))
    data.pop("knn_vector_method")
    props = data["mappings"]["properties"]
    for space, dim in sorted(dims.items()):
        props[vector_field(space)] = vector_mapping(dim)
    data["mappings"]["_meta"]["models"] = dict(sorted(models.items()))
    if aliases:
        data["aliases"] = {name: {} for name in aliases}
    return data


def add_vector_fields_body(dims: dict[str, int]) -> JsonDict:
    """The ``PUT /<index>/_mapping`` body adding vector fields for new spaces."""
    return {"properties": {vector_field(s): vector_mapping(d) for s, d in sorted(dims.items())}}


def plain_index_body(name: str) -> JsonDict:
    """The ``PUT /<index>`` body for the image-cache or meta index."""
    return copy.deepcopy(load_definition(name))


def dims_from_mapping(mapping: JsonDict) -> dict[str, int]:
    """Vector spaces and their dimensions as read back from ``GET /<index>/_mapping``."""
    return {
        name[len(VECTOR_PREFIX) :]: dim
        for name, dim in knn_fields(mapping).items()
        if name.startswith(VECTOR_PREFIX)
    }


def knn_fields(mapping: JsonDict) -> dict[str, int]:
    """Every ``knn_vector`` field (stored and projected) and its dimension."""
    out: dict[str, int] = {}
    for index_data in mapping.values():
        props = index_data.get("mappings", {}).get("properties", {})
        for name, field in props.items():
            if field.get("type") == "knn_vector":
                out[name] = int(field["dimension"])
    return out


def meta_from_mapping(mapping: JsonDict) -> JsonDict:
    """The products index's ``_meta`` (schema, models) as read back from ``GET _mapping``."""
    for index_data in mapping.values():
        return dict(index_data.get("mappings", {}).get("_meta", {}))
    return {}


def new_index_name(alias: str) -> str:
    """A fresh concrete index name behind ``alias`` (time-ordered, never reused)."""
    return f"{alias}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"


def alias_swap_actions(alias: str, old: list[str], new: str) -> JsonDict:
    """``POST /_aliases`` body moving ``alias`` from ``old`` indexes to ``new`` in one step."""
    actions: list[JsonDict] = [{"remove": {"index": o, "alias": alias}} for o in sorted(old)]
    actions.append({"add": {"index": new, "alias": alias}})
    return {"actions": actions}
