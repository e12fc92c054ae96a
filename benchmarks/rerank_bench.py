"""Re-ranking (issue 3): keyword + 2 filters + re-rank against 3 anchors, the service's full path.

    python benchmarks/rerank_bench.py --n 100000
    python benchmarks/rerank_bench.py --n 1000000 --queries 100

Builds the synthetic catalogue of ``engine_bench.py`` (512-d clustered image vectors, plus
one-hot attribute vectors of category/colour/brand so two signals are re-scored), then times
``reranker.run`` (validation, anchor checks, BM25 window of 1000, gathering vectors per space,
scoring, paging, hydrating the top 10) with one BLAS thread, as the API runs. Also times
"sort by similar" (no keyword: filtered kNN window, then re-scored) and the explain overhead.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from engine_bench import BRANDS, CATEGORIES, COLORS, Catalogue, rss_mb, timed  # noqa: E402

from lookalike.documents import Document  # noqa: E402
from lookalike.engines.embedded import EmbeddedEngine  # noqa: E402
from lookalike.filters import And, Range, Term  # noqa: E402
from reranker import Anchor, RerankRequest, run  # noqa: E402

VOCAB = (
    [f"category={c}" for c in CATEGORIES]
    + [f"color={c}" for c in COLORS]
    + [f"brand={b}" for b in BRANDS]
)


def with_attributes(batches: Iterator[list[Document]]) -> Iterator[list[Document]]:
    """Add the attribute space (one-hot category, colour, brand) as the indexer would."""
    index = {t: i for i, t in enumerate(VOCAB)}
    for docs in batches:
        for d in docs:
            v = np.zeros(len(VOCAB), np.float32)
            for t in (f"category={d.category}", f"color={d.color}", f"brand={d.brand}"):
                v[index[t]] = 1.0
            d.vectors["attributes"] = v / np.linalg.norm(v)
            d.models["attributes"] = "attrs@1"
        yield docs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--data-dir", type=Path, default=None, help="reuse/keep a built catalogue")
    args = ap.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="lookalike-rerank-"))
    built = (data_dir / "lookalike.db").exists()
    cat = Catalogue(args.n, args.dim)
    engine = EmbeddedEngine(data_dir, ann_background=False)
    rows: list[tuple[str, str]] = []
    try:
        if not built:
            t0 = time.perf_counter()
            for docs in with_attributes(cat.batches(5_000)):
                engine.upsert(docs)
            engine.refresh()
            rows.append(("build (upsert + keyword index)", f"{time.perf_counter() - t0:.0f} s"))
        t0 = time.perf_counter()
        engine.count()
        engine.vectors(["p0000000"], "image")
        engine.vectors(["p0000000"], "attributes")
        rows.append(("snapshot load", f"{time.perf_counter() - t0:.1f} s"))
        with threadpool_limits(1, user_api="blas"):
            measure(engine, cat, args, rows)
        cur, peak = rss_mb()
        rows.append(("RSS now / peak", f"{cur:,.0f} / {peak:,.0f} MiB"))
    finally:
        engine.close()
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(f"\nreranker.run on EmbeddedEngine, n={args.n:,}, dim={args.dim}, one BLAS thread")
    print("| measure | p50 / p95 |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")


def main_shape_queries(
    rng: np.random.Generator, cat: Catalogue, n: int, q: int
) -> tuple[list[str], list[And], list[tuple[Anchor, ...]]]:
    """The main shape's inputs, drawn in this order: two words (one frequent), a category and
    a price ceiling, three anchors weighted 2, 1, 1 (every main-shape benchmark uses these)."""
    texts = [f"{rng.choice(cat.vocab[:10])} {rng.choice(cat.vocab[30:500])}" for _ in range(q)]
    filters = [
        And((Term("category", CATEGORIES[i % 8]), Range("price", lte=float(rng.uniform(150, 450)))))
        for i in range(q)
    ]
    anchors = [
        tuple(
            Anchor(f"p{j:07d}", w)
            for j, w in zip(rng.integers(0, n, 3), (2.0, 1.0, 1.0), strict=True)
        )
        for _ in range(q)
    ]
    return texts, filters, anchors


def measure(
    engine: EmbeddedEngine, cat: Catalogue, args: argparse.Namespace, rows: list[tuple[str, str]]
) -> None:
    q = args.queries
    rng = np.random.default_rng(1)
    texts, filters, anchors = main_shape_queries(rng, cat, args.n, q)
    negatives = [(Anchor(f"p{int(rng.integers(0, args.n)):07d}"),) for _ in range(q)]
    it = iter(range(10**9))

    def request(i: int, **kw: object) -> RerankRequest:
        base: dict[str, object] = {
            "query": texts[i],
            "anchors": anchors[i],
            "filters": filters[i],
            "window": 1000,
            "k": 10,
        }
        base.update(kw)
        return RerankRequest(**base)  # type: ignore[arg-type]

    cases: list[tuple[str, dict[str, object]]] = [
        ("keyword + 2 filters + re-rank to 3 anchors (visual + attributes, average)", {}),
        ("same, aggregation min + 1 negative", {"aggregation": "min", "negatives": None}),
        ("same, explain=true", {"explain": True}),
        ("sort by similar: 2 filters, no keyword (kNN window 1000)", {"query": None}),
    ]
    for name, kw in cases:
        for i in range(min(q, 20)):  # warm-up: snapshot, caches
            run(engine, request(i, **resolve(kw, i, negatives)))

        def one(kw: dict[str, object] = kw) -> object:
            i = next(it) % q  # the request is built (validated) inside the timing
            return run(engine, request(i, **resolve(kw, i, negatives)))

        p50, p95 = timed(one, q)
        rows.append((name, f"{p50:.1f} / {p95:.1f} ms"))

    def floor() -> object:  # engine_bench's bare numpy re-rank, for comparison on busy cores
        i = next(it) % q
        hits = engine.keyword_search(texts[i], filters[i], limit=1000)
        found = engine.vectors([a.id for a in anchors[i]])
        mean = np.mean(list(found.values()), axis=0)
        mat = engine.vectors([h.id for h in hits])
        return np.argsort(-(np.stack(list(mat.values())) @ (mean / np.linalg.norm(mean))))

    p50, p95 = timed(floor, q)
    rows.append(
        ("floor: bare keyword + gather + numpy re-rank, visual only", f"{p50:.1f} / {p95:.1f} ms")
    )
    hits = np.mean([len(engine.keyword_search(texts[i], filters[i], 1000)) for i in range(q)])
    rows.append(("BM25 window size (mean)", f"{hits:.0f}"))


def resolve(
    kw: dict[str, object], i: int, negatives: list[tuple[Anchor, ...]]
) -> dict[str, object]:
    return {k: (negatives[i] if k == "negatives" else v) for k, v in kw.items()}


if __name__ == "__main__":
    main()
