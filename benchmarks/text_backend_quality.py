"""The int8 ONNX text backend against torch on fashion-10k: cosine, text-signal P@10, CPU time.

    python benchmarks/text_backend_quality.py [--limit N]

Embeds every product's indexed text (``indexer.pipeline.product_text``) with both backends of
all-MiniLM-L6-v2, one thread each (as in the ingest's main process beside the image workers),
and reports the cosine between the two vectors of each product (min / p1 / median), CPU ms per
text, and the text signal's precision@10 on category: every product as the anchor of an exact
kNN over the text vectors alone (anchor excluded), a hit when the category matches.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.pipeline import product_text  # noqa: E402
from lookalike.datasets import convert_dataset  # noqa: E402
from lookalike.records import ProductRecord  # noqa: E402
from lookalike.vectorizers import create_text_embedder  # noqa: E402

DATASET = ROOT.parent / "shared" / "datasets" / "fashion-10k"


def precision_at_k(vectors: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Mean share of the k nearest (anchor excluded) with the anchor's label."""
    hits = 0
    for start in range(0, len(vectors), 1024):
        sims = vectors[start : start + 1024] @ vectors.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        hits += int((labels[top] == labels[start + rows, None]).sum())
    return hits / (len(vectors) * k)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()
    if not DATASET.is_dir():
        print(f"skipped: {DATASET} is absent (../shared holds it)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        catalogue = Path(tmp) / "fashion.jsonl"
        convert_dataset("fashion-10k", DATASET, catalogue, args.limit)
        records = [ProductRecord.model_validate_json(line) for line in catalogue.open()]
        texts = [product_text(r) for r in records]
        labels = np.array([r.category or "" for r in records])
        results = {}
        with threadpool_limits(1):
            for backend in ("torch", "onnx"):
                kw = {"cache_dir": str(Path(tmp) / "models")} if backend == "onnx" else {}
                embedder = create_text_embedder("all-MiniLM-L6-v2", backend=backend, **kw)
                assert embedder is not None
                if backend == "torch":
                    import torch

                    torch.set_num_threads(1)
                embedder.embed_texts(texts[:64])  # warm-up
                cpu = time.process_time()
                vectors = embedder.embed_texts(texts)
                cpu = time.process_time() - cpu
                results[backend] = (embedder.tag, vectors, cpu / len(texts) * 1e3)
    cos = (results["torch"][1] * results["onnx"][1]).sum(axis=1)
    print(f"fashion-10k, {len(texts):,} texts, all-MiniLM-L6-v2, one thread")
    print(
        f"cosine ONNX int8 vs torch: min {cos.min():.4f}, p1 {np.percentile(cos, 1):.4f}, "
        f"median {np.median(cos):.4f}"
    )
    print(f"| backend | tag | CPU ms/text | text-signal P@{args.k} on category |")
    print("| --- | --- | --- | --- |")
    for backend, (tag, vectors, ms) in results.items():
        p = precision_at_k(vectors, labels, args.k)
        print(f"| {backend} | {tag} | {ms:.2f} | {p:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
