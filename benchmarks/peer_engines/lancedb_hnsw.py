"""LanceDB with its IVF_HNSW_SQ index (HNSW graphs inside IVF partitions, 8-bit codes)."""

from __future__ import annotations

import math
from typing import Any

from peer_engines.base import Setup
from peer_engines.lancedb import LanceDB


class LanceDBHnsw(LanceDB):
    name = "LanceDB IVF-HNSW-SQ"
    index_type = "IVF_HNSW_SQ"

    def __init__(self, setup: Setup) -> None:
        super().__init__(setup)
        self.nprobes, self.refine = 10, 1

    def index_options(self) -> dict[str, Any]:
        return {"num_partitions": max(1, int(math.sqrt(self.setup.n) / 8)), "m": 20}

    def _vector_query(self, vector: Any) -> Any:
        return (
            self.table.search(vector, vector_column_name="vector")
            .distance_type("cosine")
            .nprobes(self.nprobes)
            .ef(200)
        )


PEER = LanceDBHnsw
