"""Latency of every query shape at 100k and 1M products, and the ANN speed-up against exact.

    python benchmarks/query_shapes.py --n 100000
    python benchmarks/query_shapes.py --n 1000000 --queries 200

Builds (once) the synthetic catalogue of ``engine_bench.py`` with the attribute space of
``rerank_bench.py`` under ``out/bench/synth-<n>-d<dim>/`` and reuses it afterwards: a 1M build
takes minutes, the queries do not. The first kNN adopts the engine's own persisted graph
(``<data_dir>/ann/``; built and saved by the first run) and the first one-category kNN builds
the category partitions, both timed. Then, with one BLAS
thread as the API runs, p50/p95/p99 of each shape through ``reranker.service.run``:
more-like-this, keyword + filters + re-rank, sort-by-similar (anchors + a category filter, no
keyword), filtered kNN (``engine.knn`` with a filter), and kNN top-50 exact against HNSW,
unfiltered and with a broad filter (recall@50 and speed-up). Figures last.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from engine_bench import CATEGORIES, COLORS, Catalogue, exact_only, rss_mb  # noqa: E402
from rerank_bench import with_attributes  # noqa: E402

from lookalike.documents import Candidate  # noqa: E402
from lookalike.engines.embedded import EmbeddedEngine  # noqa: E402
from lookalike.filters import And, Filter, Range, Term, Terms  # noqa: E402
from reranker import Anchor, RerankRequest, run  # noqa: E402

DONE = "BUILT"  # marker written after a complete build; a half-built folder is rebuilt


def data_dir_for(n: int, dim: int, base: Path) -> Path:
    return base / f"synth-{n}-d{dim}"


def ensure_built(n: int, dim: int, base: Path) -> tuple[Path, float | None]:
    """The cached catalogue folder, building it first when missing; build seconds or None."""
    folder = data_dir_for(n, dim, base)
    if (folder / DONE).exists():
        return folder, None
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    t0 = time.perf_counter()
    engine = EmbeddedEngine(folder, ann_background=False)
    try:
        for docs in with_attributes(Catalogue(n, dim).batches(5_000)):
            engine.upsert(docs)
        engine.refresh()
    finally:
        engine.close()
    (folder / DONE).write_text(f"{n} products, {dim}-d\n")
    return folder, time.perf_counter() - t0


def first_answers(engine: EmbeddedEngine, dim: int) -> list[tuple[str, str]]:
    """Time the first unfiltered and the first one-category kNN: the engine adopts its
    persisted graph (or builds and saves it, once) and builds its category partitions."""
    q = Catalogue(1, dim).vectors(1)[0]
    rows = []
    t0 = time.perf_counter()
    engine.knn(q, 50)
    rows.append(
        (
            "first unfiltered kNN (adopts the saved graph, or builds and saves it)",
            f"{time.perf_counter() - t0:.1f} s",
        )
    )
    t0 = time.perf_counter()
    engine.knn(q, 50, filters=Term("category", CATEGORIES[0]))
    rows.append(
        (
            "first one-category kNN (builds the category partitions)",
            f"{time.perf_counter() - t0:.1f} s",
        )
    )
    return rows


def percentiles(fn: Callable[[int], object], count: int, warmup: int = 20) -> list[float]:
    """p50, p95, p99 in ms over ``count`` calls of ``fn(i)`` after ``warmup`` untimed ones."""
    for i in range(min(warmup, count)):
        fn(i)
    times = []
    for i in range(count):
        t = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t) * 1000)
    return [float(v) for v in np.percentile(times, [50, 95, 99])]


def fmt(p: list[float]) -> str:
    return " / ".join(f"{v:.1f}" for v in p) + " ms"


def measure(engine: EmbeddedEngine, n: int, dim: int, q: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    rng = np.random.default_rng(7)
    cat = Catalogue(n, dim)  # the catalogue's cluster centres, so queries look like products
    cat.rng = np.random.default_rng(11)  # ... but query vectors of their own
    texts = [f"{rng.choice(cat.vocab[:10])} {rng.choice(cat.vocab[30:500])}" for _ in range(q)]
    filters: list[Filter] = [
        And((Term("category", CATEGORIES[i % 8]), Range("price", lte=float(rng.uniform(150, 450)))))
        for i in range(q)
    ]
    categories: list[Filter] = [Term("category", CATEGORIES[i % 8]) for i in range(q)]
    anchors = [
        tuple(
            Anchor(f"p{j:07d}", w)
            for j, w in zip(rng.integers(0, n, 3), (2.0, 1.0, 1.0), strict=True)
        )
        for _ in range(q)
    ]
    singles = [f"p{j:07d}" for j in rng.integers(0, n, q)]
    vectors = cat.vectors(q)

    def more_like_this(i: int) -> object:
        return run(engine, RerankRequest(anchors=(Anchor(singles[i]),), k=10))

    def keyword_rerank(i: int) -> object:
        req = RerankRequest(texts[i], anchors[i], filters=filters[i], window=1000, k=10)
        return run(engine, req)

    def sort_by_similar(i: int) -> object:
        return run(engine, RerankRequest(None, anchors[i], filters=categories[i], k=10))

    def filtered_knn(i: int) -> object:
        return engine.knn(vectors[i], 50, filters=categories[i])

    shapes = [
        ("more-like-this (1 anchor, no filter; kNN window 1000, re-scored)", more_like_this),
        ("keyword + 2 filters + re-rank to 3 anchors", keyword_rerank),
        ("sort-by-similar (3 anchors + category filter, no keyword)", sort_by_similar),
        ("filtered kNN top-50 (category 1/8: partitions)", filtered_knn),
    ]
    for name, fn in shapes:
        rows.append((name, fmt(percentiles(fn, q))))

    broad: Filter = Terms("color", tuple(COLORS[:5]))  # 25% of rows: the graph answers
    cases: list[tuple[str, Filter | None]] = [
        ("unfiltered", None),
        ("broad filter (colour, 1/4)", broad),
    ]
    for label, flt in cases:

        def knn(i: int, f: Filter | None = flt) -> list[Candidate]:
            return engine.knn(vectors[i], 50, filters=f)

        with exact_only(engine):
            exact = [knn(i) for i in range(q)]
            p_exact = percentiles(knn, q)
        approx = [knn(i) for i in range(q)]
        p_ann = percentiles(knn, q)
        recall = np.mean(
            [
                len({h.id for h in a} & {h.id for h in e}) / max(1, len(e))
                for a, e in zip(approx, exact, strict=True)
            ]
        )
        rows.append((f"kNN top-50 {label}, exact", fmt(p_exact)))
        speedup = p_exact[0] / p_ann[0]
        rows.append(
            (
                f"kNN top-50 {label}, HNSW",
                f"{fmt(p_ann)}; recall@50 {recall:.3f}; speed-up x{speedup:.1f} (p50)",
            )
        )
    return rows


def ef_curve(
    engine: EmbeddedEngine, n: int, dim: int, q: int, efs: list[int]
) -> list[tuple[str, str]]:
    """kNN top-50 p50/p95 and recall@50 against exact at each ``ann_ef_search`` (the graph's
    search queue, all of it re-scored exactly), unfiltered and with the broad colour filter."""
    cat = Catalogue(n, dim)
    cat.rng = np.random.default_rng(13)
    vectors = cat.vectors(q)
    broad: Filter = Terms("color", tuple(COLORS[:5]))
    rows: list[tuple[str, str]] = []
    before = engine.policy.ef_search
    for label, flt in (("unfiltered", None), ("broad filter", broad)):
        with exact_only(engine):
            exact = [{c.id for c in engine.knn(vectors[i], 50, filters=flt)} for i in range(q)]
        for ef in efs:
            engine.policy.ef_search = ef
            try:
                found = [{c.id for c in engine.knn(vectors[i], 50, filters=flt)} for i in range(q)]
                p = percentiles(lambda i, f=flt: engine.knn(vectors[i], 50, filters=f), q)
            finally:
                engine.policy.ef_search = before
            recall = np.mean(
                [len(a & e) / max(1, len(e)) for a, e in zip(found, exact, strict=True)]
            )
            rows.append(
                (f"kNN top-50 {label}, ann_ef_search {ef}", f"{fmt(p)}; recall@50 {recall:.3f}")
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--cache", type=Path, default=ROOT / "out" / "bench", help="built catalogues")
    ap.add_argument("--build-only", action="store_true", help="build the catalogue and stop")
    ap.add_argument(
        "--ef",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[],
        help="also measure kNN top-50 recall and latency at these ann_ef_search values (64,128)",
    )
    args = ap.parse_args()
    rows: list[tuple[str, str]] = []
    folder, build_s = ensure_built(args.n, args.dim, args.cache)
    if build_s is not None:
        rows.append(("build (upsert + keyword index), once, cached", f"{build_s:.0f} s"))
    if args.build_only:
        print(f"built {folder}" if build_s is not None else f"already built: {folder}")
        return
    engine = EmbeddedEngine(folder, ann_background=False)
    try:
        t0 = time.perf_counter()
        engine.count()
        for space in ("image", "attributes"):
            engine.vectors(["p0000000"], space)
        rows.append(("snapshot load (catalogue + vectors)", f"{time.perf_counter() - t0:.1f} s"))
        rows += first_answers(engine, args.dim)
        with threadpool_limits(1, user_api="blas"):
            rows += measure(engine, args.n, args.dim, args.queries)
            if args.ef:
                rows += ef_curve(engine, args.n, args.dim, args.queries, args.ef)
        cur, peak = rss_mb()
        rows.append(("RSS now / peak", f"{cur:,.0f} / {peak:,.0f} MiB"))
    finally:
        engine.close()
    print(f"\nquery shapes on EmbeddedEngine, n={args.n:,}, dim={args.dim}, one BLAS thread")
    print(f"p50 / p95 / p99 over {args.queries} queries each, after 20 warm-up queries")
    print("| shape | p50 / p95 / p99 |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
