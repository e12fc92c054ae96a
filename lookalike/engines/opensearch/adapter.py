"""The OpenSearch engine: the Engine contract over the indexes ``Cluster`` manages.

Writes use ``helpers.streaming_bulk`` (retries 429 with exponential backoff), deterministic
``_id`` (the product id) and external versioning (microsecond clock, strictly above the stored
version), so a stale writer can never overwrite a newer document.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence

import numpy as np

from lookalike.documents import Candidate, Document, Product
from lookalike.engines.base import Engine, Provenance, UpsertResult
from lookalike.engines.opensearch import projected
from lookalike.engines.opensearch import queries as q
from lookalike.engines.opensearch.cluster import PAGE, Cluster
from lookalike.engines.opensearch.errors import translated
from lookalike.engines.opensearch.mapping import projected_field, vector_field
from lookalike.engines.opensearch.source import (
    cache_entries,
    cache_id,
    doc_vectors,
    fit_dimension,
    image_matrix,
    to_product,
    to_source,
)
from lookalike.engines.plan import RescorePlan
from lookalike.errors import ConfigError, EngineError
from lookalike.filters import Filter
from lookalike.projections import Projection
from lookalike.vectors import unit

JsonDict = dict[str, object]
_EXCLUDE_VECTORS = "vec_*,proj_*,images.vector"


class OpenSearchEngine(Cluster, Engine):
    """Lookalike's engine contract implemented with opensearch-py."""

    name = "opensearch"
    _projection_cache: tuple[float, dict[str, Projection]] | None = None

    def upsert(self, docs: Sequence[Document]) -> UpsertResult:
        """Index changed products; unchanged fingerprints are skipped, revisions bumped."""
        latest = {d.id: d for d in docs}
        vectors = {pid: doc_vectors(d) for pid, d in latest.items()}  # validates before writing
        stored = self._mget(self.index, list(latest), _source_includes="fingerprint,revision")
        now = time.time()
        version_floor = time.time_ns() // 1000
        plans: list[tuple[Document, int, int]] = []  # (doc, revision, version)
        inserted = updated = unchanged = 0
        dims: dict[str, int] = {}
        models: dict[str, str] = {}
        for pid, doc in latest.items():
            old = stored.get(pid)
            fingerprint = doc.effective_fingerprint()  # a content hash when none was given
            if old is not None and old["_source"].get("fingerprint") == fingerprint:
                unchanged += 1
                continue
            revision = int(old["_source"].get("revision", 0)) + 1 if old else 1
            inserted, updated = (inserted, updated + 1) if old else (inserted + 1, updated)
            version = max(version_floor, int(old["_version"]) + 1) if old else version_floor
            for space, vec in vectors[pid].items():
                dims[space] = max(dims.get(space, 0), int(vec.size))
            models.update(doc.models)
            plans.append((doc, revision, version))
        if plans:
            self._ensure_products(dims, models)
        actions: list[JsonDict] = []
        for doc, revision, version in plans:
            pid = doc.id
            source = to_source(doc, revision, now, self.dims())
            source.update(projected.projected_source(self, doc.models, vectors[pid]))
            actions.append(
                {
                    "_op_type": "index",
                    "_index": self.index,
                    "_id": pid,
                    "version": version,
                    "version_type": "external",
                    "_source": source,
                }
            )
            for cid, entry in cache_entries(doc):
                actions.append(
                    {"_op_type": "index", "_index": self.cache_index, "_id": cid, "_source": entry}
                )
        if actions:
            self._ensure_plain(self.cache_index, "image_cache")
            failed = self._bulk(actions)
            if failed:
                raise EngineError(f"{len(failed)} bulk writes failed", first=failed[0])
        return UpsertResult(inserted=inserted, updated=updated, unchanged=unchanged)

    def delete(self, ids: Sequence[str]) -> int:
        """Delete by id with an external version, so a delayed older write cannot resurrect."""
        stored = self._mget(self.index, ids, _source="false")
        version_floor = time.time_ns() // 1000
        actions = [
            {
                "_op_type": "delete",
                "_index": self.index,
                "_id": pid,
                "version": max(version_floor, int(d["_version"]) + 1),
                "version_type": "external",
            }
            for pid, d in stored.items()
        ]
        failed = self._bulk(actions) if actions else []
        if failed:
            raise EngineError(f"{len(failed)} deletes failed", first=failed[0])
        self.delete_provenance(list(stored))
        return len(actions)

    # -- reads --------------------------------------------------------------------------------
    def get(self, ids: Sequence[str]) -> dict[str, Product]:
        found = self._mget(self.index, ids, _source_excludes=_EXCLUDE_VECTORS)
        return {pid: to_product(d["_source"]) for pid, d in found.items()}

    def fingerprints(self, ids: Sequence[str]) -> dict[str, str]:
        found = self._mget(self.index, ids, _source_includes="fingerprint")
        return {pid: d["_source"]["fingerprint"] for pid, d in found.items()}

    def cached_image_vectors(self, hashes: Sequence[str], model: str) -> dict[str, np.ndarray]:
        by_id = {cache_id(h, model): h for h in hashes}
        found = self._mget(self.cache_index, list(by_id))
        return {
            by_id[cid]: np.asarray(d["_source"]["vector"], dtype=np.float32)
            for cid, d in found.items()
            if d["_source"].get("model") == model
        }

    def vectors(self, ids: Sequence[str], space: str = "image") -> dict[str, np.ndarray]:
        served = self.serving_field(space)
        return {} if served is None else self._field_vectors(ids, served[0])

    def _field_vectors(
        self, ids: Sequence[str], field: str, space: str | None = None, model: str | None = None
    ) -> dict[str, np.ndarray]:
        """A vector field of products by id (only those stored under ``model`` when given)."""
        includes = field if model is None else f"{field},models"
        found = self._mget(self.index, ids, _source_includes=includes)
        return {
            pid: np.asarray(d["_source"][field], dtype=np.float32)
            for pid, d in found.items()
            if d["_source"].get(field) is not None
            and (model is None or (d["_source"].get("models") or {}).get(space) == model)
        }

    def stored_vectors(self, ids: Sequence[str], space: str, model: str) -> dict[str, np.ndarray]:
        """The ``vec_<space>`` field, never a projected one (none for a derived space)."""
        if space not in self.dims():
            return {}
        return self._field_vectors(ids, vector_field(space), space, model)

    def serving_vector(self, space: str, vector: np.ndarray) -> np.ndarray:
        served = self.serving_field(space)
        p = None if served is None else served[2]
        if p is not None and np.size(vector) == p.input_dim:
            return p.apply(unit(np.ravel(vector)))[0]
        return vector

    def space_models(self) -> dict[str, str]:
        self.forget_mapping()  # another process may have written a new model since
        return self.index_models()

    # -- projections (projected.py) ---------------------------------------------------------------
    def serving_field(self, space: str) -> tuple[str, int, Projection | None] | None:
        """``(field, dimension, projection)`` that answers a space; None when nothing does."""
        p = self.projections().get(space)
        if p is not None:
            field = projected_field(space, p.tag)
            source_model = self.index_models().get(p.source)
            if p.model == source_model and field in self.vector_fields():
                return field, p.dim, p
            if not p.in_place:
                p.check_model(source_model)  # another model now: fit it again
                raise ConfigError(
                    f"index {self.index} holds no vectors of the projection serving {space!r}:"
                    " register it again",
                    space=space,
                )
        if space in self.dims():
            return vector_field(space), self.dims()[space], None
        return None

    def set_projection(self, projection: Projection) -> None:
        projected.register(self, projection)

    def projection(self, space: str) -> Projection | None:
        return self.projections().get(space)

    def projections(self) -> dict[str, Projection]:
        now = projected.clock()
        cache = self._projection_cache
        if cache is None or now - cache[0] > projected.CACHE_SECONDS:
            self.forget_mapping()  # a projected field may have been added meanwhile
            cache = self._projection_cache = (now, projected.read_all(self))
        return cache[1]

    def forget_projections(self) -> None:
        self._projection_cache = None

    def drop_projection(self, space: str) -> bool:
        return projected.drop(self, space)

    def image_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        found = self._mget(self.index, ids, _source_includes="images")
        out = {pid: image_matrix(d["_source"]) for pid, d in found.items()}
        return {pid: m for pid, m in out.items() if m is not None}

    def keyword_search(
        self, query: str | None, filters: Filter | None = None, limit: int = 1000
    ) -> list[Candidate]:
        text = q.clean_text(query)
        if limit <= 0:
            return []
        if not text:
            return [Candidate(pid, 0.0) for pid in self._ids(filters, limit)]
        hits = self._search(q.keyword_body(text, filters, limit))
        return [Candidate(h["_id"], float(h["_score"])) for h in hits]

    def knn(
        self,
        vector: np.ndarray,
        k: int,
        filters: Filter | None = None,
        exclude: Sequence[str] = (),
        space: str = "image",
    ) -> list[Candidate]:
        served = self.serving_field(space)
        if k <= 0 or served is None:
            return []
        field, dim, _ = served
        query = self.serving_vector(space, np.asarray(vector, np.float32).ravel())
        query = fit_dimension(np.asarray(query, np.float32), dim, space)
        body = q.knn_body(query, k, filters, exclude, space, self.ef_search, field)
        hits = self._search(body)
        return [Candidate(h["_id"], q.cosine_from_score(h["_score"])) for h in hits]

    def rescored_search(self, plan: RescorePlan, k: int) -> tuple[list[Candidate], int] | None:
        """Re-score inside the cluster (a ``rescore`` with the Painless script), unless
        ``pushdown`` is off; the reranker then re-scores in Python over ``_mget`` vectors."""
        if not self.rescores:
            return None
        from lookalike.engines.opensearch.pushdown import plan_search

        return plan_search(self, plan, k)

    def _ids(self, filters: Filter | None, limit: int) -> list[str]:
        """Ids matching the filters in id order, paged with ``search_after``."""
        out: list[str] = []
        after: str | None = None
        while len(out) < limit:
            size = min(PAGE, limit - len(out))
            hits = self._search(q.listing_body(filters, size, after))
            out.extend(h["_id"] for h in hits)
            if len(hits) < size:
                break
            after = hits[-1]["sort"][0]
        return out

    def count(self, filters: Filter | None = None) -> int:
        if not self._exists(self.index):
            return 0
        with translated("count"):
            return int(self.client.count(index=self.index, body=q.count_body(filters))["count"])

    def all_ids(self) -> list[str]:
        return self._ids(None, 1 << 62)

    # -- metadata and lifecycle -------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        found = self._mget(self.meta_index, [key])
        return found[key]["_source"]["value"] if key in found else None

    def set_meta(self, key: str, value: str) -> None:
        self._ensure_plain(self.meta_index, "meta")
        with translated("meta write"):
            self.client.index(index=self.meta_index, id=key, body={"value": value})

    # -- provenance: one document per product in <prefix>-provenance ------------------------------
    def record_provenance(self, entries: Mapping[str, Provenance]) -> None:
        if not entries:
            return
        self._ensure_plain(self.provenance_index, "provenance")
        actions = [
            {
                "_op_type": "update",
                "_index": self.provenance_index,
                "_id": pid,
                # a partial update merges ``fields``: the given fields replace theirs
                "doc": {"fields": {f: json.dumps(e, ensure_ascii=False) for f, e in by.items()}},
                "doc_as_upsert": True,
                "retry_on_conflict": 5,
            }
            for pid, by in entries.items()
        ]
        failed = self._bulk(actions)
        if failed:
            raise EngineError(f"{len(failed)} provenance writes failed", first=failed[0])

    def provenance(self, ids: Sequence[str]) -> dict[str, Provenance]:
        found = self._mget(self.provenance_index, ids)
        out = {
            pid: {f: json.loads(e) for f, e in (d["_source"].get("fields") or {}).items()}
            for pid, d in found.items()
        }
        return {pid: by for pid, by in out.items() if by}

    def delete_provenance(self, ids: Sequence[str], fields: Sequence[str] | None = None) -> int:
        found = self._mget(self.provenance_index, ids)
        actions: list[JsonDict] = []
        for pid, d in found.items():
            kept = dict(d["_source"].get("fields") or {})
            for f in kept.copy() if fields is None else fields:
                kept.pop(f, None)
            base: JsonDict = {"_index": self.provenance_index, "_id": pid}
            if not kept:
                actions.append({**base, "_op_type": "delete"})
            elif len(kept) < len(d["_source"].get("fields") or {}):
                actions.append({**base, "_op_type": "index", "_source": {"fields": kept}})
        failed = self._bulk(actions) if actions else []
        if failed:
            raise EngineError(f"{len(failed)} provenance deletes failed", first=failed[0])
        return len(found)

    # -- blue/green (lifecycle.py) ------------------------------------------------------------
    @property
    def location(self) -> str:
        return self.index

    def begin_rebuild(self, models: dict[str, str]) -> OpenSearchEngine:
        from lookalike.engines.opensearch.lifecycle import create_green

        return create_green(self, {}, models)

    def promote(self, green: Engine, keep_old: bool = False) -> list[str]:
        from lookalike.engines.opensearch.lifecycle import switch_alias

        return switch_alias(self, green.location, drop_old=not keep_old)

    def refresh(self) -> None:
        self.forget_projections()
        with translated("refresh"):
            self.client.indices.refresh(
                index=",".join(
                    [
                        self.index,
                        self.cache_index,
                        self.meta_index,
                        self.projection_index,
                        self.provenance_index,
                    ]
                ),
                params={"ignore_unavailable": "true", "allow_no_indices": "true"},
            )

    def close(self) -> None:
        with translated("close"):
            if self.drop_on_close:
                self.client.indices.delete(
                    index=f"{self.prefix}-*", params={"ignore_unavailable": "true"}
                )
            self.client.close()
