"""Benchmark of the embedded engine on a synthetic catalogue (see docs/embedded-engine.md).

    python benchmarks/engine_bench.py --n 100000

Builds the catalogue through ``EmbeddedEngine.upsert`` in batches (the bulk path), then
times keyword + filters, keyword + gather + re-rank, filtered exact kNN and unfiltered kNN
(exact and HNSW, with recall@50), with one BLAS thread as the API runs. Figures last.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from lookalike.documents import Document, ImageEntry
from lookalike.engines.embedded import EmbeddedEngine
from lookalike.filters import And, Filter, Range, Term, Terms

CATEGORIES = [f"category{i}" for i in range(8)]
COLORS = [f"colour{i}" for i in range(20)]
BRANDS = [f"brand{i}" for i in range(50)]
MODEL = "bench-clip@1"


class Catalogue:
    """Deterministic synthetic products: clustered unit vectors and Zipf-distributed words."""

    def __init__(self, n: int, dim: int, seed: int = 0) -> None:
        self.n, self.dim = n, dim
        self.rng = np.random.default_rng(seed)
        self.centers = self._unit(self.rng.standard_normal((256, dim)))
        self.vocab = np.array([f"w{i}" for i in range(20_000)])
        ranks = np.arange(1, len(self.vocab) + 1)
        self.word_p = (1.0 / ranks**1.1) / np.sum(1.0 / ranks**1.1)

    @staticmethod
    def _unit(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    def vectors(self, count: int) -> np.ndarray:
        labels = self.rng.integers(0, len(self.centers), count)
        noise = self.rng.standard_normal((count, self.dim)).astype(np.float32)
        return self._unit(self.centers[labels] + 0.06 * noise)

    def words(self, count: int) -> np.ndarray:
        return self.rng.choice(self.vocab, size=count, p=self.word_p)

    def batches(self, size: int) -> Iterator[list[Document]]:
        for start in range(0, self.n, size):
            m = min(size, self.n - start)
            vecs = self.vectors(m)
            words = self.words(m * 8).reshape(m, 8)
            cat = self.rng.integers(0, len(CATEGORIES), m)
            col = self.rng.integers(0, len(COLORS), m)
            brand = self.rng.integers(0, len(BRANDS), m)
            price = np.round(self.rng.uniform(5, 500, m), 2)
            docs = []
            for j in range(m):
                pid = f"p{start + j:07d}"
                docs.append(
                    Document(
                        id=pid,
                        title=" ".join(words[j, :5]),
                        description=" ".join(words[j, 5:]),
                        brand=BRANDS[brand[j]],
                        category=CATEGORIES[cat[j]],
                        color=COLORS[col[j]],
                        price=float(price[j]),
                        images=[ImageEntry(0, f"https://img/{pid}.jpg", f"h{pid}", vecs[j])],
                        models={"image": MODEL},
                        fingerprint=f"fp-{pid}",
                    )
                )
            yield docs


def rss_mb() -> tuple[float, float]:
    """Current and peak resident memory of this process, MiB."""
    current = 0.0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


@contextmanager
def exact_only(engine: EmbeddedEngine) -> Iterator[None]:
    """Hide the HNSW graph so knn answers exactly (for the exact-vs-ANN comparison)."""
    space = engine.snapshot.spaces["image"]
    ann, threshold = space.ann, engine.policy.threshold
    space.ann, engine.policy.threshold = None, 1 << 62
    try:
        yield
    finally:
        space.ann, engine.policy.threshold = ann, threshold


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--data-dir", type=Path, default=None, help="default: a temporary folder")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    ap.add_argument("--ann-storage", choices=["sq8", "flat"], default="sq8")
    args = ap.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="lookalike-bench-"))
    rows: list[tuple[str, str]] = []
    cat = Catalogue(args.n, args.dim)
    engine = EmbeddedEngine(data_dir, ann_background=False, ann_storage=args.ann_storage)
    try:
        t0 = time.perf_counter()
        for docs in cat.batches(args.batch):
            engine.upsert(docs)
        load_s = time.perf_counter() - t0
        rows.append(("bulk upsert", f"{load_s:.1f} s ({args.n / load_s:,.0f} docs/s)"))
        t0 = time.perf_counter()
        engine.refresh()
        rows.append(("keyword index build", f"{time.perf_counter() - t0:.1f} s"))
        with threadpool_limits(1, user_api="blas"):
            run_queries(engine, cat, args, rows)
        db = data_dir / "lookalike.db"
        size = sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file())
        rows.append(
            ("disk: SQLite / total", f"{db.stat().st_size / 2**20:,.0f} / {size / 2**20:,.0f} MiB")
        )
        cur, peak = rss_mb()
        rows.append(("RSS now / peak", f"{cur:,.0f} / {peak:,.0f} MiB"))
    finally:
        engine.close()
        if not args.keep and args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(f"\nEmbeddedEngine, n={args.n:,}, dim={args.dim}, one BLAS thread")
    width = max(len(name) for name, _ in rows)
    print(f"| {'measure'.ljust(width)} | result |\n| {'-' * width} | --- |")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")


def run_queries(
    engine: EmbeddedEngine, cat: Catalogue, args: argparse.Namespace, rows: list[tuple[str, str]]
) -> None:
    rng = np.random.default_rng(1)
    q = args.queries
    t0 = time.perf_counter()
    engine.count()
    rows.append(("snapshot: catalogue load", f"{time.perf_counter() - t0:.1f} s"))
    t0 = time.perf_counter()
    engine.vectors(["p0000000"] * 64)
    rows.append(("snapshot: vector load", f"{time.perf_counter() - t0:.1f} s"))

    # one frequent and one mid-frequency word: thousands of matches, so top-1000 is full
    texts = [f"{rng.choice(cat.vocab[:10])} {rng.choice(cat.vocab[30:500])}" for _ in range(q)]
    filters: list[Filter] = [
        And(
            (
                Term("category", CATEGORIES[i % 8]),
                Range("price", lte=float(rng.uniform(150, 450))),
            )
        )
        for i in range(q)
    ]
    it = iter(range(10**9))

    def keyword() -> object:
        i = next(it) % q
        return engine.keyword_search(texts[i], filters[i], limit=1000)

    p50, p95 = timed(keyword, q)
    hits = np.mean([len(engine.keyword_search(texts[i], filters[i], limit=1000)) for i in range(q)])
    rows.append(("keyword + 2 filters, top-1000", f"{p50:.1f} / {p95:.1f} ms ({hits:.0f} hits)"))

    ids = [f"p{i:07d}" for i in rng.integers(0, args.n, 3 * q)]

    def rerank() -> object:
        i = next(it) % q
        hits = engine.keyword_search(texts[i], filters[i], limit=1000)
        anchors = engine.vectors(ids[3 * i : 3 * i + 3])
        mean = np.mean(list(anchors.values()), axis=0)
        mean /= np.linalg.norm(mean)
        found = engine.vectors([h.id for h in hits])
        if not found:
            return []
        mat = np.stack(list(found.values()))
        return np.argsort(-(mat @ mean))

    p50, p95 = timed(rerank, q)
    rows.append(("+ gather 1000 vectors, re-rank to 3 anchors", f"{p50:.1f} / {p95:.1f} ms"))

    queries = cat.vectors(q)
    narrow = [Term("category", CATEGORIES[i % 8]) for i in range(q)]
    p50, p95 = timed(
        lambda: (lambda i: engine.knn(queries[i], 50, filters=narrow[i]))(next(it) % q), q
    )
    rows.append(("filtered kNN top-50, exact (category, 1/8)", f"{p50:.1f} / {p95:.1f} ms"))

    t0 = time.perf_counter()
    built = engine.build_ann()
    rows.append(
        ("HNSW build (M=32, " + args.ann_storage + ")", f"{time.perf_counter() - t0:.1f} s")
    )
    with exact_only(engine):
        exact = [engine.knn(queries[i], 50) for i in range(q)]
        p50, p95 = timed(lambda: engine.knn(queries[next(it) % q], 50), q)
        exact_p50 = p50
        rows.append(("unfiltered kNN top-50, exact", f"{p50:.1f} / {p95:.1f} ms"))
        broad = Terms("color", tuple(COLORS[:5]))  # 25%: still the graph
        exact_broad = [engine.knn(queries[i], 50, filters=broad) for i in range(q)]
        p50, p95 = timed(lambda: engine.knn(queries[next(it) % q], 50, filters=broad), q)
        exact_broad_p50 = p50
        rows.append(("kNN top-50, exact, unrelated filter (1/4)", f"{p50:.1f} / {p95:.1f} ms"))
    if not built:
        return
    approx = [engine.knn(queries[i], 50) for i in range(q)]
    p50, p95 = timed(lambda: engine.knn(queries[next(it) % q], 50), q)
    recall = np.mean(
        [
            len({h.id for h in a} & {h.id for h in e}) / 50
            for a, e in zip(approx, exact, strict=True)
        ]
    )
    rows.append(
        (
            "unfiltered kNN top-50, HNSW",
            f"{p50:.1f} / {p95:.1f} ms, recall@50 {recall:.3f}, x{exact_p50 / p50:.1f} exact",
        )
    )
    approx = [engine.knn(queries[i], 50, filters=broad) for i in range(q)]
    p50, p95 = timed(lambda: engine.knn(queries[next(it) % q], 50, filters=broad), q)
    recall = np.mean(
        [
            len({h.id for h in a} & {h.id for h in e}) / 50
            for a, e in zip(approx, exact_broad, strict=True)
        ]
    )
    rows.append(
        (
            "kNN top-50, HNSW, unrelated filter (1/4)",
            f"{p50:.1f} / {p95:.1f} ms, recall@50 {recall:.3f}, x{exact_broad_p50 / p50:.1f} exact",
        )
    )


if __name__ == "__main__":
    main()
