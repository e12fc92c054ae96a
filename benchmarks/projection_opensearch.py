"""How long registering a projection takes on OpenSearch, and what it costs a query.

``set_projection`` on OpenSearch writes every product's projected vector into a field of its
own (paged reads, sequence-guarded scripted updates), then waits a second for other
processes' caches and fills what they wrote meanwhile. This times ``lookalike.pca.fit_engine``
(sampling, fitting, registering) on N random low-rank products of D dimensions, then a top-10
k-NN over the full field and over the reduced one (alternating, median of 100).

    OPENSEARCH_URL=http://127.0.0.1:9200 python benchmarks/projection_opensearch.py \\
        --products 2000 --dim 512 --pca 128
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid

import numpy as np

from lookalike import pca
from lookalike.documents import Document, ImageEntry
from lookalike.engines.opensearch import OpenSearchEngine
from lookalike.engines.opensearch import queries as q


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--products", type=int, default=2000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--pca", type=int, default=128)
    args = ap.parse_args()
    url = os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:9200")
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    engine = OpenSearchEngine(url=url, prefix=prefix, drop_on_close=True)
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((32, args.dim))  # low-rank data, as image vectors are
    try:
        for start in range(0, args.products, 500):
            docs = []
            for i in range(start, min(start + 500, args.products)):
                v = (rng.standard_normal(32) @ basis + 0.1 * rng.standard_normal(args.dim)).astype(
                    np.float32
                )
                docs.append(
                    Document(
                        id=f"p{i:06d}",
                        images=[
                            ImageEntry(0, f"https://x/{i}.jpg", f"h{i}", v / np.linalg.norm(v))
                        ],
                        models={"image": "img@1"},
                        fingerprint=f"f{i}",
                    )
                )
            engine.upsert(docs)
        engine.refresh()
        query = engine.stored_vectors(["p000007"], "image", "img@1")["p000007"]

        t = time.perf_counter()
        fitted = pca.fit_engine(engine, "image", args.pca)
        fit_s = time.perf_counter() - t
        engine.refresh()
        # Alternating, so both see the same load: the full field searched directly, and the
        # engine's k-NN (the reduced field, the query reduced on the way in).
        full_body = q.knn_body(query, 10, None, (), "image", engine.ef_search)
        full, reduced = [], []
        for _ in range(100):
            t = time.perf_counter()
            engine._search(full_body)
            full.append(time.perf_counter() - t)
            t = time.perf_counter()
            engine.knn(query, 10)
            reduced.append(time.perf_counter() - t)
        before, after = (statistics.median(x) * 1000 for x in (full, reduced))
        print(
            json.dumps(
                {
                    "products": args.products,
                    "dim": args.dim,
                    "pca": args.pca,
                    "explained": round(fitted.explained, 4),
                    "fit_and_register_s": round(fit_s, 2),
                    "knn_full_ms": round(before, 2),
                    "knn_reduced_ms": round(after, 2),
                },
                indent=1,
            )
        )
    finally:
        engine.close()


if __name__ == "__main__":
    main()
