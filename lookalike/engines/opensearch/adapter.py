"""The OpenSearch engine: the Engine contract over the indexes ``Cluster`` manages.

Writes use ``helpers.streaming_bulk`` (retries 429 with exponential backoff), deterministic
``_id`` (the product id) and external versioning (microsecond clock, strictly above the stored
version), so a stale writer can never overwrite a newer document.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from lookalike.documents import Candidate, Document, Product
from lookalike.engines.base import Engine, UpsertResult
from lookalike.engines.opensearch import queries as q
from lookalike.engines.opensearch.cluster import PAGE, Cluster
from lookalike.engines.opensearch.errors import translated
from lookalike.engines.opensearch.mapping import vector_field
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
from lookalike.errors import EngineError
from lookalike.filters import Filter

JsonDict = dict[str, object]
_EXCLUDE_VECTORS = "vec_*,images.vector"


class OpenSearchEngine(Cluster, Engine):
    """Lookalike's engine contract implemented with opensearch-py."""

    name = "opensearch"

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
            actions.append(
                {
                    "_op_type": "index",
                    "_index": self.index,
                    "_id": pid,
                    "version": version,
                    "version_type": "external",
                    "_source": to_source(doc, revision, now, self.dims()),
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
        if space not in self.dims():
            return {}
        field = vector_field(space)
        found = self._mget(self.index, ids, _source_includes=field)
        return {
            pid: np.asarray(d["_source"][field], dtype=np.float32)
            for pid, d in found.items()
            if d["_source"].get(field) is not None
        }

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
        if k <= 0 or space not in self.dims():
            return []
        query = fit_dimension(np.asarray(vector, np.float32).ravel(), self.dims()[space], space)
        hits = self._search(q.knn_body(query, k, filters, exclude, space, self.ef_search))
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
        with translated("refresh"):
            self.client.indices.refresh(
                index=",".join([self.index, self.cache_index, self.meta_index]),
                params={"ignore_unavailable": "true", "allow_no_indices": "true"},
            )

    def close(self) -> None:
        with translated("close"):
            if self.drop_on_close:
                self.client.indices.delete(
                    index=f"{self.prefix}-*", params={"ignore_unavailable": "true"}
                )
            self.client.close()
