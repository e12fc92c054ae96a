"""A process that writes batches to the embedded engine until it is killed (no tests here).

``python -m tests.test_reliability_writer DATA_DIR ROUND`` inserts batches ``ROUND*1000+k``
of :data:`BATCH` products and, every other batch, rewrites an older batch with a new title
token; after each commit it syncs the keyword index and the RAM snapshot, so a kill can land
inside an SQLite commit, a tantivy commit or a snapshot rebuild.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

from lookalike.documents import Document, ImageEntry
from lookalike.engines.embedded import EmbeddedEngine

BATCH = 50
DIM = 16
ANN_THRESHOLD = 300  # small, so HNSW graphs are built and used in these tests


def vector_for(pid: str) -> np.ndarray:
    """Each product's image vector, recomputable by the checker from its id alone."""
    seed = int(hashlib.sha256(pid.encode()).hexdigest()[:16], 16)
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def batch_docs(batch: int, tag: str) -> list[Document]:
    docs = []
    for j in range(BATCH):
        pid = f"b{batch}-{j}"
        docs.append(
            Document(
                id=pid,
                title=f"item batch{batch} {tag}",
                images=[ImageEntry(0, f"img/{pid}.jpg", f"h-{pid}", vector_for(pid))],
                models={"image": "img-test@1"},
                fingerprint=f"{pid}-{tag}",
            )
        )
    return docs


def main(data_dir: str, round_no: int) -> None:
    rng = np.random.default_rng(round_no)
    engine = EmbeddedEngine(Path(data_dir), ann_threshold=ANN_THRESHOLD, ann_background=False)
    for k in range(10_000):
        batch = round_no * 1000 + k
        engine.upsert(batch_docs(batch, "rev0"))
        if k % 2 and round_no > 0:  # rewrite a batch of an earlier round
            old = int(rng.integers(0, round_no)) * 1000 + int(rng.integers(0, 3))
            engine.upsert(batch_docs(old, f"rev{round_no}x{k}"))
        engine.refresh()
        print(f"committed {batch}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
