"""Projections on OpenSearch: registered in ``<prefix>-projections`` (one document per served
space), their vectors in a ``knn_vector`` field of their own (``proj_<space>_<hash>``).

Registering one adds the field, writes every product's projected vector into it (partial
updates, guarded by sequence numbers so a concurrent rewrite wins), stores the projection
(readers switch to the field from then on) and, once every writer has seen it, fills the
products written meanwhile. Later upserts carry the projected vectors themselves.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.engines.opensearch.errors import translated
from lookalike.engines.opensearch.mapping import (
    projected_field,
    projected_field_body,
    projected_fields_of,
    vector_field,
)
from lookalike.errors import EngineError
from lookalike.projections import Projection, check_registrable
from lookalike.vectors import unit, unit_rows

if TYPE_CHECKING:
    from lookalike.engines.opensearch.adapter import OpenSearchEngine

JsonDict = dict[str, Any]
# Sets the new projected vector and removes those of earlier fits (each field has its own
# HNSW graph: refits must not pile them up in every document).
_SET_FIELD = (
    "ctx._source[params.field] = params.vector;"
    " for (String f : params.old) { ctx._source.remove(f); }"
)
_REMOVE_FIELDS = "for (String f : params.old) { ctx._source.remove(f); }"
CACHE_SECONDS = 1.0  # how stale a process's view of the registered projections may be
PAGE = 500


def clock() -> float:
    """The clock of the projection cache (monotonic)."""
    return time.monotonic()


def read_all(engine: OpenSearchEngine) -> dict[str, Projection]:
    """Every registered projection, by served space."""
    if not engine._exists(engine.projection_index):
        return {}
    with translated("projection read"):
        resp = engine.client.search(
            index=engine.projection_index, body={"size": 1000, "query": {"match_all": {}}}
        )
    return {h["_id"]: Projection.from_json(h["_source"]["body"]) for h in resp["hits"]["hits"]}


def ensure_field(engine: OpenSearchEngine, p: Projection) -> str:
    """The projection's vector field in the products index, added when missing."""
    field = projected_field(p.space, p.tag)
    if field not in engine.vector_fields():
        with translated("mapping update"):
            engine.client.indices.put_mapping(
                index=engine.index, body=projected_field_body(field, p.dim)
            )
        engine.vector_fields()[field] = p.dim
    return field


def _fill(engine: OpenSearchEngine, p: Projection, field: str, since: float | None) -> None:
    """Write the projected vector of every product (updated at or after ``since``) whose
    source vector is of the projection's model, removing earlier fits' values."""
    source = vector_field(p.source)
    old = [f for f in projected_fields_of(engine.vector_fields(), p.space) if f != field]
    query: JsonDict = {"match_all": {}}
    if since is not None:
        query = {"range": {"updated_at": {"gte": since}}}
    for hits in _pages(engine, query, [source, "models"]):
        rows = [
            h
            for h in hits
            if h["_source"].get(source) is not None
            and (h["_source"].get("models") or {}).get(p.source) == p.model
        ]
        if not rows:
            continue
        matrix = np.asarray([h["_source"][source] for h in rows], dtype=np.float32)
        projected = p.apply(unit_rows(matrix[:, : p.input_dim]))  # stored as the embedded
        _write(
            engine,
            [
                _update(engine, h, _SET_FIELD, {"field": field, "vector": vec.tolist(), "old": old})
                for h, vec in zip(rows, projected, strict=True)
            ],
        )


def _pages(engine: OpenSearchEngine, query: JsonDict, includes: list[str]) -> Iterator[list[Any]]:
    """Every matching product (``_source`` limited to ``includes``), a page at a time, with
    sequence numbers for guarded updates."""
    after: str | None = None
    with translated("refresh"):
        engine.client.indices.refresh(index=engine.index)
    while True:
        body: JsonDict = {
            "size": PAGE,
            "query": query,
            "sort": ["id"],
            "_source": includes,
            "seq_no_primary_term": True,
            "track_total_hits": False,
        }
        if after is not None:
            body["search_after"] = [after]
        hits = engine._search(body)
        yield hits
        if len(hits) < PAGE:
            return
        after = hits[-1]["sort"][0]


def _update(engine: OpenSearchEngine, hit: JsonDict, script: str, params: JsonDict) -> JsonDict:
    """A scripted update of one product, refused (409, ignored) if it changed since read."""
    return {
        "_op_type": "update",
        "_index": engine.index,
        "_id": hit["_id"],
        "if_seq_no": hit["_seq_no"],
        "if_primary_term": hit["_primary_term"],
        "script": {"source": script, "params": params},
    }


def _write(engine: OpenSearchEngine, actions: list[JsonDict]) -> None:
    failed = engine._bulk(actions) if actions else []  # a 409: rewritten meanwhile, fine
    if failed:
        raise EngineError(f"{len(failed)} projected-vector updates failed", first=failed[0])


def _clear(engine: OpenSearchEngine, fields: list[str]) -> None:
    """Remove these projected fields' values from every product that has some."""
    if not fields:
        return
    for hits in _pages(engine, {"match_all": {}}, fields):
        rows = [h for h in hits if any(f in h["_source"] for f in fields)]
        _write(engine, [_update(engine, h, _REMOVE_FIELDS, {"old": fields}) for h in rows])


def register(engine: OpenSearchEngine, p: Projection) -> None:
    """``Engine.set_projection`` on OpenSearch (see the module docstring)."""
    check_registrable(p, engine.space_models(), set(engine.dims()))
    if engine.dims().get(p.source, 0) < p.input_dim:
        raise EngineError(f"space {p.source!r} holds fewer than the projection's {p.input_dim}")
    field = ensure_field(engine, p)
    started = time.time()
    _fill(engine, p, field, None)
    engine._ensure_plain(engine.projection_index, "projections")
    doc = {"source": p.source, "model": p.model, "tag": p.tag, "body": p.to_json()}
    with translated("projection write"):
        engine.client.index(index=engine.projection_index, id=p.space, body=doc, refresh=True)
    engine.forget_projections()
    time.sleep(CACHE_SECONDS)  # writers that had not seen it yet: fill what they wrote
    _fill(engine, p, field, started - 1.0)


def drop(engine: OpenSearchEngine, space: str) -> bool:
    """``Engine.drop_projection``: readers go back to the stored field at once, then the
    projected values are removed from the documents (the mapping keeps the field: a mapping
    cannot lose one)."""
    if not engine._exists(engine.projection_index):
        return False
    from opensearchpy import exceptions as osx

    with translated("projection delete"):
        try:
            engine.client.delete(index=engine.projection_index, id=space, refresh=True)
        except osx.NotFoundError:
            return False
    engine.forget_projections()
    _clear(engine, projected_fields_of(engine.vector_fields(), space))  # readers switched
    return True


def projected_source(
    engine: OpenSearchEngine, doc_models: dict[str, str], vectors: dict[str, np.ndarray]
) -> JsonDict:
    """The projected fields a product written now carries (projections of its models)."""
    out: JsonDict = {}
    for p in engine.projections().values():
        vec = vectors.get(p.source)
        if vec is None or doc_models.get(p.source) != p.model or vec.size < p.input_dim:
            continue
        field = ensure_field(engine, p)
        out[field] = [float(x) for x in p.apply(unit(vec[: p.input_dim]))[0]]
    return out
