"""The cluster side of the OpenSearch engine: client, index names, index creation, and the
three request primitives (``_mget`` in bounded chunks, ``_search``, ``streaming_bulk``).

* ``<prefix>-products`` is an alias over a concrete index (blue/green: see ``lifecycle``);
  reads and writes go through the alias, or through ``target`` when building a new index.
* ``<prefix>-image-cache`` keeps image vectors by (model, image hash); it outlives products.
* ``<prefix>-meta`` keeps small settings, one document per key.
* ``<prefix>-projections`` keeps the registered projections, one document per served space.
* ``<prefix>-provenance`` keeps where inferred values came from, one document per product.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from lookalike.engines.opensearch import queries as q
from lookalike.engines.opensearch.errors import require_client, translated
from lookalike.engines.opensearch.mapping import (
    GROWING_SPACES,
    add_vector_fields_body,
    dims_from_mapping,
    field_dimension,
    knn_fields,
    meta_from_mapping,
    models_meta_body,
    new_index_name,
    plain_index_body,
    products_index_body,
    vector_field,
)
from lookalike.errors import EngineError

JsonDict = dict[str, Any]
PAGE = 1000


class Cluster:
    """Connection, names and index management shared by the engine and blue/green."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:9200",
        prefix: str = "lookalike",
        client: Any = None,
        target: str | None = None,
        max_retries: int = 5,
        initial_backoff: float = 1.0,
        chunk_size: int = 500,
        drop_on_close: bool = False,
        pushdown: bool = True,
        ef_search: int = 256,
        timeout: float = 30.0,
    ) -> None:
        require_client()
        if client is None:
            from opensearchpy import OpenSearch

            client = OpenSearch(hosts=[url], timeout=timeout, http_compress=True)
        self.client = client
        self.prefix = prefix
        self.alias = f"{prefix}-products"
        self.index = target or self.alias
        self.cache_index = f"{prefix}-image-cache"
        self.meta_index = f"{prefix}-meta"
        self.projection_index = f"{prefix}-projections"
        self.provenance_index = f"{prefix}-provenance"
        self.max_retries = max_retries
        self.initial_backoff = initial_backoff
        self.chunk_size = chunk_size
        self.drop_on_close = drop_on_close  # throwaway engines (tests) delete their indexes
        self.rescores = pushdown  # anchor re-ranking runs inside the cluster (a rescore)
        self.ef_search = ef_search  # HNSW beam of k-NN queries (at least k)
        self._dims: dict[str, int] | None = None
        self._fields: dict[str, int] = {}  # every knn_vector field (stored and projected)
        self._meta: JsonDict = {}  # the products index's _meta (its models)
        self._known: set[str] = set()

    # -- index management ---------------------------------------------------------------------
    def _exists(self, index: str) -> bool:
        if index in self._known:
            return True
        with translated("index lookup"):
            found = bool(self.client.indices.exists(index=index))
        if found:
            self._known.add(index)
        return found

    def forget_mapping(self) -> None:
        """The alias moved: read the vector dimensions again on next use."""
        self._dims = None
        self._fields, self._meta = {}, {}

    def dims(self) -> dict[str, int]:
        """Vector spaces of the products index and their dimensions (empty if none yet)."""
        if self._dims is None:
            if not self._exists(self.index):
                return {}
            with translated("mapping read"):
                mapping = self.client.indices.get_mapping(index=self.index)
            self._dims = dims_from_mapping(mapping)
            self._fields = knn_fields(mapping)
            self._meta = meta_from_mapping(mapping)
        return self._dims

    def vector_fields(self) -> dict[str, int]:
        """Every ``knn_vector`` field of the products index (projected ones too)."""
        self.dims()
        return self._fields

    def index_models(self) -> dict[str, str]:
        """The newest model tag written to each space (``_meta.models``)."""
        self.dims()
        return dict(self._meta.get("models", {}))

    def _record_models(self, models: dict[str, str]) -> None:
        """Keep ``_meta.models`` at the newest model of each space."""
        if all(self.index_models().get(s) == m for s, m in models.items()):
            return
        body = models_meta_body(self._meta, models)
        with translated("mapping update"):
            self.client.indices.put_mapping(index=self.index, body=body)
        self._meta = body["_meta"]

    def _ensure_products(self, dims: dict[str, int], models: dict[str, str]) -> None:
        known = self.dims()
        want = {s: field_dimension(s, d) for s, d in dims.items()}
        if not known and not self._exists(self.index):
            # The first index behind the alias has a fixed name, so writers starting at once
            # (two worker processes) cannot put two indexes behind it: the later create fails.
            first = self.index == self.alias
            name = f"{self.alias}-initial" if first else new_index_name(self.alias)
            body = products_index_body(want, models, aliases=(self.alias,))
            if self._create(name, body):
                self._dims = want
                self._fields = {vector_field(s): d for s, d in want.items()}
                self._meta = body["mappings"]["_meta"]
                return
            if not self._exists(self.index):
                raise EngineError(f"index {name} exists but {self.alias} does not point at it")
            known = self.dims()  # another writer created it a moment ago: go on as if it had been
        new = {s: want[s] for s in dims if s not in known}
        clash = {
            s: (known[s], d)
            for s, d in dims.items()
            if s in known and (d > known[s] if s in GROWING_SPACES else d != known[s])
        }
        if clash:
            raise EngineError(
                f"vector dimensions do not fit the index (index, new): {clash}; "
                "run `lookalike reindex` to rebuild it",
                clash=clash,
            )
        if new:
            with translated("mapping update"):
                self.client.indices.put_mapping(index=self.index, body=add_vector_fields_body(new))
            self._dims = {**known, **new}
            self._fields.update((vector_field(s), d) for s, d in new.items())
        self._record_models(models)

    def _ensure_plain(self, index: str, definition: str) -> None:
        if not self._exists(index):
            self._create(index, plain_index_body(definition))

    def _create(self, index: str, body: JsonDict) -> bool:
        """Create ``index``; False when another writer has just created it (not an error)."""
        from opensearchpy import exceptions as osx

        with translated("index creation"):
            try:
                self.client.indices.create(index=index, body=body)
            except osx.RequestError as exc:
                if exc.error != "resource_already_exists_exception":
                    raise
                return False
        self._known.add(index)
        return True

    # -- low-level reads ----------------------------------------------------------------------
    def _mget(self, index: str, ids: Sequence[str], **source: str) -> dict[str, JsonDict]:
        """Found documents by id (realtime, so no refresh is needed after a write)."""
        if not ids or not self._exists(index):
            return {}
        found: dict[str, JsonDict] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), PAGE):  # bounded requests for whole-catalogue reads
            body = q.mget_body(unique[start : start + PAGE])
            with translated("mget"):
                resp = self.client.mget(index=index, body=body, params=source or None)
            found.update((d["_id"], d) for d in resp["docs"] if d.get("found"))
        return found

    def _search(self, body: JsonDict) -> list[JsonDict]:
        return self._search_with_total(body)[0]

    def _search_with_total(self, body: JsonDict) -> tuple[list[JsonDict], int]:
        """Hits, and ``hits.total.value`` when the body tracks it (else the hits' count)."""
        if not self._exists(self.index):
            return [], 0
        with translated("search"):
            resp = self.client.search(index=self.index, body=body)
        hits: list[JsonDict] = resp["hits"]["hits"]
        total = resp["hits"].get("total")
        return hits, int(total["value"]) if isinstance(total, dict) else len(hits)

    # -- writes -------------------------------------------------------------------------------
    def _bulk(self, actions: Iterable[JsonDict]) -> list[JsonDict]:
        """Run bulk actions; returns the failed items other than version conflicts."""
        from opensearchpy import helpers

        failed = []
        with translated("bulk"):
            for ok, item in helpers.streaming_bulk(
                self.client,
                actions,
                chunk_size=self.chunk_size,
                max_retries=self.max_retries,
                initial_backoff=self.initial_backoff,  # type: ignore[arg-type]  # float works
                max_backoff=30,
                raise_on_error=False,
                raise_on_exception=True,
            ):
                result = next(iter(item.values()))
                if not ok and result.get("status") != 409:  # 409: a newer version already won
                    failed.append(result)
        return failed
