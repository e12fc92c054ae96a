"""OpenSearch (only when ``OPENSEARCH_URL`` is set) through this project's own
``OpenSearchEngine``: Lucene HNSW ``knn_vector`` fields (``engine: lucene``, the mapping in
``lookalike/engines/opensearch/mappings``), BM25 ``multi_match`` with filters, and the
re-rank pushed into the cluster as one ``rescore`` (what a user of OpenSearch would write
by hand, already written). The products are upserted from the same generator
(``Catalogue(n, 512)`` + ``with_attributes``) and force-merged to one segment.

The peer's process is only the client: the node's RSS is read with psutil from
``$OPENSEARCH_HOME/node.pid`` when that is set (``scripts/opensearch`` writes it).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from peer_engines.base import MissingExtra, Setup
from peer_engines.lookalike import Lookalike


class OpenSearch(Lookalike):
    name = "OpenSearch"

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        try:
            import opensearchpy  # noqa: F401
        except ImportError as exc:
            raise MissingExtra("opensearch-py") from exc

    def build(self) -> float | None:
        from engine_bench import Catalogue
        from rerank_bench import with_attributes

        from lookalike.engines.opensearch import OpenSearchEngine

        url = os.environ["OPENSEARCH_URL"]
        engine = OpenSearchEngine(url, f"peers{self.setup.n}", pushdown=True, chunk_size=500)
        self.engine = engine  # type: ignore[assignment]
        done = self.setup.workdir / "BUILT"
        if done.exists() and engine.count() == self.setup.n:
            secs, self.cached = float(done.read_text()), True
        else:
            t0 = time.perf_counter()
            for docs in with_attributes(Catalogue(self.setup.n, self.setup.dim).batches(5_000)):
                engine.upsert(docs)
            engine.refresh()
            engine.client.indices.forcemerge(
                index=engine.index, params={"max_num_segments": "1", "request_timeout": 3600}
            )
            secs = time.perf_counter() - t0
            done.write_text(f"{secs:.1f}\n")
        self.detail = f"Lucene HNSW (ef_search {engine.ef_search}), BM25, rescore push-down"
        self.detail += self._node_rss()
        self._check()
        return secs

    @staticmethod
    def _node_rss() -> str:
        home = os.environ.get("OPENSEARCH_HOME")
        if not home or not (Path(home) / "node.pid").exists():
            return "; node RSS unknown (set OPENSEARCH_HOME)"
        try:
            import psutil
        except ImportError:
            return "; node RSS unknown (psutil missing)"
        pid = int((Path(home) / "node.pid").read_text().split()[0])
        return f"; node RSS {psutil.Process(pid).memory_info().rss / 2**20:,.0f} MiB"

    def close(self) -> None:
        pass


PEER = OpenSearch
