"""The embedded engine and a local OpenSearch node side by side on one 100k synthetic catalogue.

    OPENSEARCH_URL=http://127.0.0.1:9200 python benchmarks/opensearch_side_by_side.py
    python benchmarks/opensearch_side_by_side.py --n 100000 --queries 200 --opensearch-url URL

Needs a running OpenSearch 2.x node with the k-NN plugin (``scripts/opensearch start``; give it
about 2 GB of heap for 100k: ``OPENSEARCH_HEAP=2g``). The catalogue is ``engine_bench.py``'s
generator (512-d clustered unit image vectors, 8 categories, 20 colours, 50 brands, Zipf
titles) with ``rerank_bench.py``'s one-hot attribute space, so two signals are re-scored.

1. **Bulk ingest**, interleaved: each batch of 5,000 documents goes to the embedded engine
   (``upsert``), then to OpenSearch (``upsert``: ``_mget`` of fingerprints, then
   ``streaming_bulk``), each timed on its own; then each engine's ``refresh`` (tantivy commit;
   OpenSearch ``_refresh``) and the embedded engine's HNSW build (a serving process builds its
   graph after start; Lucene builds its graphs while indexing and merging), then an
   OpenSearch ``_forcemerge`` to one segment (timed apart, not counted in docs/s).
2. **Exact answers** first: the embedded engine with its graph hidden (numpy over all rows)
   gives the exact top-50 of more-like-this and of filtered kNN.
3. **Latency**, interleaved: for every query the variants run one after another, in an order
   that rotates per query, so the noise of shared cores falls on all of them alike; p50/p95
   over ``--queries`` after 20 warm-up queries each, one BLAS thread (as the API runs).
   Shapes (``reranker.run`` except the bare kNN): keyword + 2 filters (category, price) +
   re-rank to 3 anchors (weights 2, 1, 1; window 1000) on the embedded engine, on OpenSearch
   with push-down (one ``rescore`` in the cluster) and with Python re-scoring
   (``LOOKALIKE_OPENSEARCH_PUSHDOWN=false``: ``_mget`` of the window's vectors);
   more-like-this (1 anchor, no filter, k-NN window 1000, top 50) with recall@50 against the
   exact answer; filtered kNN top-50 (``engine.knn`` within one category, 1/8 of rows) with
   recall@50.
4. **Memory**: the node's JVM heap (``_nodes/stats/jvm``, used and max) and the java process's
   RSS (psutil, pid from ``--node-pid-file``, default ``out/opensearch-<port>/node.pid``),
   beside this process's RSS with the embedded engine loaded (the OpenSearch client in it is a
   few MiB); on-disk sizes of both.

Figures are printed last as markdown tables.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import psutil
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from engine_bench import CATEGORIES, Catalogue, exact_only  # noqa: E402
from rerank_bench import with_attributes  # noqa: E402

from lookalike.engines import Engine  # noqa: E402
from lookalike.engines.embedded import EmbeddedEngine  # noqa: E402
from lookalike.engines.opensearch import OpenSearchEngine  # noqa: E402
from lookalike.filters import And, Filter, Range, Term  # noqa: E402
from reranker import Anchor, RerankRequest, run  # noqa: E402

WARMUP = 20
MiB = 2**20


def rss_mib(pid: int | None = None) -> float:
    return psutil.Process(pid or os.getpid()).memory_info().rss / MiB


def dir_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / MiB


def p50_p95(times: list[float]) -> tuple[float, float]:
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def interleaved(
    variants: dict[str, Callable[[int], object]], count: int
) -> dict[str, tuple[float, float]]:
    """p50/p95 (ms) of every variant, run one after another per query in a rotating order."""
    names = list(variants)
    for i in range(WARMUP):
        for name in names:
            variants[name](i % count)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(count):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            t = time.perf_counter()
            variants[name](i)
            times[name].append((time.perf_counter() - t) * 1000)
    return {name: p50_p95(ts) for name, ts in times.items()}


def recall(found: list[list[str]], exact: list[list[str]]) -> float:
    return float(
        np.mean([len(set(f) & set(e)) / max(1, len(e)) for f, e in zip(found, exact, strict=True)])
    )


def drop_indexes(engine: OpenSearchEngine) -> None:
    client = engine.client
    names = list(client.indices.get(index=f"{engine.prefix}-*", params={"expand_wildcards": "all"}))
    for name in names:
        client.indices.delete(index=name)


def ingest(
    embedded: EmbeddedEngine, opensearch: OpenSearchEngine, n: int, dim: int, batch: int
) -> list[tuple[str, ...]]:
    t_emb = t_os = 0.0
    for docs in with_attributes(Catalogue(n, dim).batches(batch)):
        t = time.perf_counter()
        embedded.upsert(docs)
        t_emb += time.perf_counter() - t
        t = time.perf_counter()
        opensearch.upsert(docs)
        t_os += time.perf_counter() - t
    t = time.perf_counter()
    embedded.refresh()
    r_emb = time.perf_counter() - t
    t = time.perf_counter()
    opensearch.refresh()
    r_os = time.perf_counter() - t
    t = time.perf_counter()
    embedded.build_ann()
    ann_s = time.perf_counter() - t
    t = time.perf_counter()
    opensearch.client.indices.forcemerge(
        index=opensearch.index, params={"max_num_segments": "1", "request_timeout": 1800}
    )
    merge_s = time.perf_counter() - t
    return [
        (
            "bulk upsert, batches of 5,000 (docs/s)",
            f"{n / t_emb:,.0f} ({t_emb:.1f} s)",
            f"{n / t_os:,.0f} ({t_os:.1f} s)",
        ),
        ("refresh after ingest", f"{r_emb:.1f} s (tantivy commit)", f"{r_os:.1f} s (`_refresh`)"),
        (
            "upsert + refresh (docs/s)",
            f"{n / (t_emb + r_emb):,.0f}",
            f"{n / (t_os + r_os):,.0f}",
        ),
        (
            "ANN graph ready",
            f"{ann_s:.1f} s (HNSW build after start)",
            f"built while indexing; `_forcemerge` to 1 segment {merge_s:.1f} s",
        ),
    ]


def node_memory(engine: OpenSearchEngine, pid_file: Path) -> tuple[str, str]:
    stats: Any = engine.client.nodes.stats(metric="jvm")
    node = next(iter(stats["nodes"].values()))
    mem = node["jvm"]["mem"]
    heap = f"{mem['heap_used_in_bytes'] / MiB:,.0f} / {mem['heap_max_in_bytes'] / MiB:,.0f} MiB"
    try:
        rss = f"{rss_mib(int(pid_file.read_text().strip())):,.0f} MiB"
    except (OSError, ValueError, psutil.Error) as exc:
        rss = f"unknown ({exc.__class__.__name__})"
    return heap, rss


def measure(
    embedded: EmbeddedEngine,
    pushed: OpenSearchEngine,
    python: OpenSearchEngine,
    n: int,
    dim: int,
    q: int,
) -> list[tuple[str, str, str, str]]:
    rng = np.random.default_rng(7)
    cat = Catalogue(n, dim)
    cat.rng = np.random.default_rng(11)  # query vectors of their own, near the same centres
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

    def rerank(engine: Engine) -> Callable[[int], object]:
        return lambda i: run(
            engine, RerankRequest(texts[i], anchors[i], filters=filters[i], window=1000, k=10)
        )

    def mlt(engine: Engine, i: int) -> list[str]:
        return [h.id for h in run(engine, RerankRequest(anchors=(Anchor(singles[i]),), k=50)).hits]

    def fknn(engine: Engine, i: int) -> list[str]:
        return [c.id for c in engine.knn(vectors[i], 50, filters=categories[i])]

    with exact_only(embedded):
        exact_mlt = [mlt(embedded, i) for i in range(q)]
        exact_knn = [fknn(embedded, i) for i in range(q)]

    out: list[tuple[str, str, str, str]] = []
    fmt = lambda p: f"{p[0]:.1f} / {p[1]:.1f}"  # noqa: E731

    rr = interleaved(
        {"embedded": rerank(embedded), "pushdown": rerank(pushed), "python": rerank(python)}, q
    )
    out.append(
        (
            "keyword + 2 filters + re-rank to 3 anchors, p50 / p95 ms",
            fmt(rr["embedded"]),
            f"push-down {fmt(rr['pushdown'])}; Python re-scoring {fmt(rr['python'])}",
            f"push-down x{rr['pushdown'][0] / rr['embedded'][0]:.1f}, "
            f"Python x{rr['python'][0] / rr['embedded'][0]:.1f}",
        )
    )
    for label, fn, exact in (
        ("more-like-this (1 anchor, k-NN window 1000, top 50)", mlt, exact_mlt),
        ("filtered kNN top-50 (one category, 1/8)", fknn, exact_knn),
    ):
        res = interleaved({"embedded": partial(fn, embedded), "os": partial(fn, pushed)}, q)
        got = {
            "embedded": [fn(embedded, i) for i in range(q)],
            "opensearch": [fn(pushed, i) for i in range(q)],
        }
        out.append(
            (
                f"{label}: p50 / p95 ms; recall@50",
                f"{fmt(res['embedded'])}; {recall(got['embedded'], exact):.3f}",
                f"{fmt(res['os'])}; {recall(got['opensearch'], exact):.3f}",
                f"x{res['os'][0] / res['embedded'][0]:.1f}",
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--opensearch-url", default=os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:9200")
    )
    ap.add_argument("--prefix", default="sidebyside", help="OpenSearch index prefix (dropped)")
    ap.add_argument("--node-pid-file", type=Path, default=None)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--data-dir", type=Path, default=None, help="default: a temporary folder")
    args = ap.parse_args()
    port = urlparse(args.opensearch_url).port or 9200
    pid_file = args.node_pid_file or ROOT / "out" / f"opensearch-{port}" / "node.pid"
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="lookalike-side-"))
    if data_dir.exists():
        shutil.rmtree(data_dir)

    rss_before = rss_mib()
    embedded = EmbeddedEngine(data_dir, ann_background=False)
    pushed = OpenSearchEngine(args.opensearch_url, args.prefix, pushdown=True, chunk_size=500)
    python = OpenSearchEngine(args.opensearch_url, args.prefix, pushdown=False)
    rows: list[tuple[str, ...]] = []
    try:
        drop_indexes(pushed)
        heap0, node_rss0 = node_memory(pushed, pid_file)
        rows += ingest(embedded, pushed, args.n, args.dim, args.batch)
        with threadpool_limits(1, user_api="blas"):
            rows += measure(embedded, pushed, python, args.n, args.dim, args.queries)
        heap, node_rss = node_memory(pushed, pid_file)
        stats: Any = pushed.client.indices.stats(index=pushed.index, metric="store")
        os_disk = stats["_all"]["primaries"]["store"]["size_in_bytes"] / MiB
        rows.append(
            (
                "memory after the queries",
                f"process RSS {rss_mib():,.0f} MiB (before opening: {rss_before:,.0f}); "
                f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f}",
                f"JVM heap used / max {heap} (empty node: {heap0}); java RSS {node_rss} "
                f"(empty node: {node_rss0})",
                "",
            )
        )
        rows.append(("on disk", f"{dir_mib(data_dir):,.0f} MiB", f"{os_disk:,.0f} MiB", ""))
    finally:
        embedded.close()
        pushed.close()
        python.close()
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)

    print(
        f"\nembedded vs OpenSearch, n={args.n:,}, dim={args.dim}, {args.queries} queries per "
        f"shape after {WARMUP} warm-ups, interleaved, one BLAS thread"
    )
    print("| measure | embedded | OpenSearch | OpenSearch / embedded (p50) |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        cells = list(row) + [""] * (4 - len(row))
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
