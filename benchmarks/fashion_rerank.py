"""fashion-10k: does re-ranking by an anchor beat keyword order alone? (issue 3 acceptance)

For keyword queries built from category names (every subCategory and articleType name with at
least ``--min-products`` products), anchors are drawn from the keyword window (products a
shopper would see); for each (query, anchor) pair, the share of the top 10 (anchor excluded)
whose category (articleType) **and** colour (baseColour) equal the anchor's is measured for
keyword order alone and for the same query re-ranked against the anchor. Both figures print.

    .venv/bin/python benchmarks/fashion_rerank.py [--limit N] [--text-model none]
        [--data-dir DIR]   # keep (or reuse) the index between runs
        [--pca 640,320,128]  # also: "more like this" quality against the PCA dimension
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.context import build_context  # noqa: E402
from indexer.run import index_catalogue  # noqa: E402
from lookalike.datasets import convert_dataset  # noqa: E402
from lookalike.engines import Engine, open_engine  # noqa: E402
from lookalike.pca import fit  # noqa: E402
from lookalike.settings import Settings  # noqa: E402
from reranker import Anchor, RerankRequest, run  # noqa: E402

SHARED = ROOT.parent / "shared"
VARIANTS: dict[str, dict[str, float]] = {
    "keyword order alone": {},
    "re-ranked, default weights": {},
    "re-ranked, visual only": {"visual": 1.0, "text": 0.0, "attributes": 0.0, "keyword": 0.0},
    "re-ranked, visual + text": {"visual": 1.0, "text": 0.3, "attributes": 0.0, "keyword": 0.1},
}


def queries(styles: Path, ids: set[str], min_products: int) -> list[str]:
    """subCategory and articleType names with enough indexed products, most frequent first."""
    counts: Counter[str] = Counter()
    with open(styles, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["id"] in ids:
                counts[row["subCategory"]] += 1
                counts[row["articleType"]] += 1
    return [name for name, n in counts.most_common() if n >= min_products and name]


def evaluate(engine: Engine, names: list[str], anchors_per_query: int, k: int) -> dict[str, list]:
    """Per variant: for every (query, anchor) pair, hits matching category / colour / both."""
    rng = np.random.default_rng(7)
    results: dict[str, list] = {v: [] for v in VARIANTS}
    latencies: list[float] = []
    for name in names:
        window = run(engine, RerankRequest(query=name, k=200)).hits
        if len(window) < k + 1:
            continue
        picks = rng.choice(len(window), size=min(anchors_per_query, len(window)), replace=False)
        for p in picks:
            anchor = window[int(p)]
            for variant, weights in VARIANTS.items():
                if variant == "keyword order alone":
                    hits = [h for h in window if h.id != anchor.id][:k]
                else:
                    req = RerankRequest(
                        query=name, anchors=(Anchor(anchor.id),), weights=weights, k=k
                    )
                    t0 = time.perf_counter()
                    hits = run(engine, req).hits
                    latencies.append((time.perf_counter() - t0) * 1000)
                cat = sum(h.category == anchor.category for h in hits) / k
                col = sum(h.color == anchor.color for h in hits) / k
                both = sum(h.category == anchor.category and h.color == anchor.color for h in hits)
                results[variant].append((cat, col, both / k))
    results["_latency"] = latencies
    return results


def pca_quality(engine: Engine, dims: list[int], k: int) -> list[tuple[str, float, float]]:
    """Leave-one-out "more like this" precision@k (category, colour) of the image vectors,
    full and PCA-reduced (fitted on the whole catalogue, as ``lookalike.pca.fit_engine`` does).
    """
    ids = engine.all_ids()
    found = engine.vectors(ids, "image")
    ids = [i for i in ids if i in found]
    x = np.stack([found[i] for i in ids])
    products = engine.get(ids)
    cats = np.array([products[i].category or "" for i in ids])
    cols = np.array([products[i].color or "" for i in ids])
    rows = []
    for dim in [x.shape[1], *dims]:
        y = x if dim == x.shape[1] else fit(x, dim, "image").reduce(x)
        cat_hits = col_hits = 0.0
        for start in range(0, len(ids), 1000):
            sims = y[start : start + 1000] @ y.T
            for r in range(sims.shape[0]):
                sims[r, start + r] = -np.inf  # the anchor itself
            top = np.argpartition(-sims, k, axis=1)[:, :k]
            own = np.arange(start, start + sims.shape[0])[:, None]
            cat_hits += float(np.sum(cats[top] == cats[own]))
            col_hits += float(np.sum(cols[top] == cols[own]))
        n = len(ids) * k
        rows.append(
            (f"{dim}-d" + (" (full)" if dim == x.shape[1] else ""), cat_hits / n, col_hits / n)
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=SHARED / "datasets" / "fashion-10k")
    ap.add_argument(
        "--model", type=Path, default=SHARED / "models" / "tf2_mobilenet_v2_1.0_224_ptq.tflite"
    )
    ap.add_argument("--tensor", default="GlobalPool")
    ap.add_argument("--text-model", default="all-MiniLM-L6-v2")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--min-products", type=int, default=30)
    ap.add_argument("--anchors", type=int, default=10, help="anchors per query")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--pca", default="", help="comma-separated PCA dimensions to measure")
    args = ap.parse_args()
    if not args.dataset.is_dir() or not args.model.is_file():
        print(f"skipped: {args.dataset} or {args.model} is absent (../shared holds them)")
        return 0
    tmp = tempfile.TemporaryDirectory()
    data_dir = args.data_dir or Path(tmp.name) / "data"
    settings = Settings(
        data_dir=data_dir,
        image_model=str(args.model),
        image_tensor=args.tensor,
        text_model=args.text_model,
    )
    with open_engine(settings) as engine:
        indexed = engine.count()
    if not indexed:
        catalogue = Path(tmp.name) / "fashion.jsonl"
        convert_dataset("fashion-10k", args.dataset, catalogue, args.limit)
        ctx = build_context(settings)
        t0 = time.perf_counter()
        index_catalogue(catalogue, ctx, batch_size=settings.batch_size)
        print(f"indexed in {time.perf_counter() - t0:.0f} s")
        ctx.engine.close()
    with open_engine(settings) as engine, threadpool_limits(1):
        names = queries(args.dataset / "styles.csv", set(engine.all_ids()), args.min_products)
        res = evaluate(engine, names, args.anchors, args.k)
        n_products = engine.count()
    latency = res.pop("_latency")
    pairs = len(res["keyword order alone"])
    print(
        f"fashion-10k: {n_products} products, {len(names)} keyword queries (category names), "
        f"{pairs} (query, anchor) pairs; image {args.model.name}, text {args.text_model}"
    )
    print(f"| top-{args.k} share matching the anchor's | category | colour | category and colour |")
    print("| --- | --- | --- | --- |")
    for variant, rows in res.items():
        cat, col, both = np.mean(rows, axis=0)
        print(f"| {variant} | {cat:.3f} | {col:.3f} | **{both:.3f}** |")
    p50, p95 = np.percentile(latency, [50, 95])
    print(f"re-ranked query latency p50 / p95: {p50:.1f} / {p95:.1f} ms")
    if args.pca:
        dims = [int(d) for d in args.pca.split(",")]
        with open_engine(settings) as engine, threadpool_limits(2):
            table = pca_quality(engine, dims, args.k)
        print(f"\n| image vectors | more-like-this P@{args.k} category | P@{args.k} colour |")
        print("| --- | --- | --- |")
        for name, cat, col in table:
            print(f"| {name} | {cat:.3f} | {col:.3f} |")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
