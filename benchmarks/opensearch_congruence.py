"""Congruence of the embedded and OpenSearch engines on fashion-10k, measured.

    OPENSEARCH_URL=http://127.0.0.1:9200 python benchmarks/opensearch_congruence.py
    python benchmarks/opensearch_congruence.py --opensearch-url URL --skip-ingest  # reuse

Needs a running OpenSearch 2.x node with the k-NN plugin (``scripts/opensearch start``).
Steps:

1. ``lookalike convert fashion-10k`` writes the catalogue (all 10,000 products) unless it
   exists; ``lookalike index`` (the CLI, in a subprocess) indexes it twice with the int8
   MobileNetV2 extractor (``GlobalPool``) and all-MiniLM-L6-v2: ``LOOKALIKE_ENGINE=embedded``
   into ``--data-dir`` and ``LOOKALIKE_ENGINE=opensearch`` with ``OPENSEARCH_URL`` under the
   index prefix ``--prefix``. Indexing is idempotent, so a second run only checks fingerprints.
2. For ``--anchors`` seeded anchor products, the same request goes through the library
   (``reranker.run`` on each engine object; ``engine.knn`` for the bare kNN rows) and the two
   top-10 lists are compared: mean overlap ``|A ∩ B| / 10``, the share of identical lists (ids
   in order), Kendall tau-b and Spearman rho over the ids both lists hold (their ranks in each
   list; anchors with fewer than two shared ids are left out of the mean), and the largest
   ``|score_A - score_B|`` over the shared ids.

Rows: kNN top-10 (bare, unfiltered and within the anchor's category), more like this,
keyword search (BM25 order), sort-by-similar within the anchor's category, keyword + 2
filters + re-rank to 3 anchors with OpenSearch push-down on and off (and push-down on against
off on OpenSearch alone), and image sets (set methods ``max``/``greedy``/``assignment``).
fashion-10k has one image per product, so an image-set row compares two single-image sets:
every method reduces to the cosine of the two images, the same visual value as ``mean``; the
rows check the per-image path (``engine.image_vectors``, Python set matching) end to end on
both engines, not set matching on real multi-image products. Set rows use a window of 200
(on OpenSearch every candidate's image vectors come back as ``_source`` JSON).

The embedded engine is exact at this size (below ``LOOKALIKE_ANN_THRESHOLD``); OpenSearch
answers kNN with Lucene HNSW (exact only when efficient filtering falls back to a scan), so
kNN windows may differ in their tails. A score is a function of the vectors alone in every row
without a keyword, so those rows must agree to 1e-4 on shared ids whatever the window; rows
with BM25 depend on each engine's BM25 (tantivy against Lucene) and are reported, not gated.
The table is printed last, in markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau, spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from lookalike.engines import Engine, create_engine  # noqa: E402
from lookalike.engines.opensearch import OpenSearchEngine  # noqa: E402
from lookalike.filters import Filter, parse_filter_args  # noqa: E402
from reranker import Anchor, RerankRequest, run  # noqa: E402
from reranker.imagesets import SetOptions  # noqa: E402

SHARED = ROOT.parent / "shared"
TOL = 1e-4
K = 10

Top = list[tuple[str, float]]  # one answer: (id, score) in rank order


@dataclass
class Row:
    name: str
    gated: bool  # scores are functions of the vectors only: must agree to TOL
    overlaps: list[float] = field(default_factory=list)
    identical: list[bool] = field(default_factory=list)
    taus: list[float] = field(default_factory=list)
    rhos: list[float] = field(default_factory=list)
    max_diff: float = 0.0
    sizes: list[tuple[int, int]] = field(default_factory=list)

    def add(self, a: Top, b: Top) -> None:
        ids_a, ids_b = [i for i, _ in a], [i for i, _ in b]
        self.sizes.append((len(a), len(b)))
        shared = [i for i in ids_a if i in set(ids_b)]
        self.overlaps.append(len(shared) / max(1, min(K, max(len(a), len(b)))))
        self.identical.append(ids_a == ids_b)
        if len(shared) >= 2:
            ra = [ids_a.index(i) for i in shared]
            rb = [ids_b.index(i) for i in shared]
            tau = kendalltau(ra, rb).statistic
            rho = spearmanr(ra, rb).statistic
            if np.isfinite(tau):
                self.taus.append(float(tau))
            if np.isfinite(rho):
                self.rhos.append(float(rho))
        sa, sb = dict(a), dict(b)
        for i in shared:
            self.max_diff = max(self.max_diff, abs(sa[i] - sb[i]))

    def cells(self) -> list[str]:
        mean = lambda xs: f"{np.mean(xs):.3f}" if xs else "n/a"  # noqa: E731
        if self.gated:
            verdict = "ok" if self.max_diff <= TOL else "**FAIL**"
        else:
            verdict = "not gated (BM25)"
        empty = sum(1 for x, y in self.sizes if x == 0 or y == 0)
        return [
            self.name,
            str(len(self.overlaps)) + (f" ({empty} empty)" if empty else ""),
            mean(self.overlaps),
            f"{np.mean(self.identical):.3f}",
            mean(self.taus),
            mean(self.rhos),
            f"{self.max_diff:.2e}",
            verdict,
        ]


def cli(args: list[str], env: dict[str, str]) -> float:
    """Run ``lookalike ARGS`` with ``env`` added; seconds taken."""
    t0 = time.perf_counter()
    exe = Path(sys.executable).with_name("lookalike")
    subprocess.run([str(exe), *args], env={**os.environ, **env}, check=True)
    return time.perf_counter() - t0


def ingest(args: argparse.Namespace) -> dict[str, float]:
    if not args.catalogue.exists():
        args.catalogue.parent.mkdir(parents=True, exist_ok=True)
        cli(["convert", "fashion-10k", str(args.source), str(args.catalogue)], {})
    common = {
        "LOOKALIKE_IMAGE_MODEL": str(args.image_model),
        "LOOKALIKE_IMAGE_TENSOR": args.image_tensor,
        "LOOKALIKE_TEXT_MODEL": "all-MiniLM-L6-v2",
        "LOOKALIKE_DATA_DIR": str(args.data_dir),
    }
    seconds = {}
    seconds["embedded"] = cli(
        ["index", str(args.catalogue), "--json"], {**common, "LOOKALIKE_ENGINE": "embedded"}
    )
    seconds["opensearch"] = cli(
        ["index", str(args.catalogue), "--json"],
        {
            **common,
            "LOOKALIKE_ENGINE": "opensearch",
            "OPENSEARCH_URL": args.opensearch_url,
            "LOOKALIKE_OPENSEARCH_PREFIX": args.prefix,
        },
    )
    return seconds


def top(engine: Engine, req: RerankRequest) -> Top:
    return [(h.id, h.score) for h in run(engine, req).hits]


def load_records(path: Path) -> dict[str, dict[str, Any]]:
    with path.open() as f:
        return {r["id"]: r for r in (json.loads(line) for line in f if line.strip())}


def attr(record: dict[str, Any], key: str) -> str | None:
    value = (record.get("attributes") or {}).get(key)
    return value if isinstance(value, str) and value else None


def requests(
    records: dict[str, dict[str, Any]], anchors: Sequence[str], seed: int
) -> dict[str, list[RerankRequest]]:
    """The requests of each re-ranker row, one per anchor."""
    rng = np.random.default_rng(seed + 1)
    by_category: dict[str, list[str]] = {}
    for pid, r in records.items():
        by_category.setdefault(r.get("category") or "", []).append(pid)
    for ids in by_category.values():
        ids.sort()
    out: dict[str, list[RerankRequest]] = {}
    mlt, keyword, sort_similar, rerank = [], [], [], []
    for pid in anchors:
        r = records[pid]
        cat = r.get("category") or ""
        cat_filter = parse_filter_args([f"category={cat}"])
        mlt.append(RerankRequest(anchors=(Anchor(pid),), k=K))
        keyword.append(RerankRequest(r["title"], k=K))
        sort_similar.append(RerankRequest(None, (Anchor(pid),), filters=cat_filter, k=K))
        # keyword + 2 filters (gender, and usage or season) + 3 anchors (weights 2, 1, 1):
        # the anchor and two seeded products of its category; the query is the title's
        # last two words ("Navy Blue Shirt" -> "Blue Shirt"), so the window is broad.
        pool = [i for i in by_category.get(cat, []) if i != pid]
        others = [str(x) for x in rng.choice(pool, size=min(2, len(pool)), replace=False)]
        filters = [f"gender={attr(r, 'gender') or 'Unisex'}"]
        second = attr(r, "usage") or attr(r, "season")
        if second:
            filters.append(f"usage={second}" if attr(r, "usage") else f"season={second}")
        words = r["title"].split()
        anchors3 = (Anchor(pid, 2.0), *(Anchor(o) for o in others))
        rerank.append(
            RerankRequest(" ".join(words[-2:]), anchors3, filters=parse_filter_args(filters), k=K)
        )
    out["more like this (1 anchor, default weights)"] = mlt
    out["keyword search (title as query, BM25 order)"] = keyword
    out["sort-by-similar within the anchor's category"] = sort_similar
    out["keyword + 2 filters + re-rank to 3 anchors"] = rerank
    for method in ("max", "greedy", "assignment"):
        out[f"image sets: more like this, `{method}`, window 200"] = [
            RerankRequest(
                anchors=(Anchor(pid),), k=K, window=200, image_set=SetOptions(method=method)
            )
            for pid in anchors
        ]
    return out


def measure(
    embedded: Engine,
    pushed: OpenSearchEngine,
    python: OpenSearchEngine,
    records: dict[str, dict[str, Any]],
    anchors: Sequence[str],
    seed: int,
) -> list[Row]:
    rows: list[Row] = []

    # bare kNN: the engines' own primitive, scores are cosines
    vecs = embedded.vectors(list(anchors), "image")
    for label, make in (
        ("kNN top-10, unfiltered (`engine.knn`)", lambda pid: None),
        (
            "kNN top-10 within the anchor's category (`engine.knn`)",
            lambda pid: parse_filter_args([f"category={records[pid].get('category')}"]),
        ),
    ):
        row = Row(label, gated=True)
        for pid in anchors:
            flt: Filter | None = make(pid)
            a = embedded.knn(vecs[pid], K, flt, [pid])
            b = pushed.knn(vecs[pid], K, flt, [pid])
            row.add([(c.id, c.score) for c in a], [(c.id, c.score) for c in b])
        rows.append(row)

    reqs = requests(records, anchors, seed)
    for name, batch in reqs.items():
        bm25 = "keyword" in name
        if name.startswith("keyword +"):
            on = Row(f"{name}, push-down on", gated=False)
            off = Row(f"{name}, push-down off (Python re-scoring)", gated=False)
            os_only = Row(f"{name}: OpenSearch push-down on vs off", gated=False)
            for req in batch:
                e, p, y = top(embedded, req), top(pushed, req), top(python, req)
                on.add(e, p)
                off.add(e, y)
                os_only.add(p, y)
            rows += [on, off, os_only]
            # the same with the keyword weight 0: BM25 picks the window, vectors score it
            gated_on = Row(f"{name}, keyword weight 0, push-down on", gated=True)
            gated_off = Row(f"{name}, keyword weight 0, push-down off", gated=True)
            for req in batch:
                req0 = RerankRequest(
                    req.query, req.anchors, filters=req.filters, k=K, weights={"keyword": 0.0}
                )
                e = top(embedded, req0)
                gated_on.add(e, top(pushed, req0))
                gated_off.add(e, top(python, req0))
            rows += [gated_on, gated_off]
            continue
        row = Row(name, gated=not bm25)
        for req in batch:
            row.add(top(embedded, req), top(pushed, req))
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--opensearch-url", default=os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:9200")
    )
    ap.add_argument("--prefix", default="congruence", help="OpenSearch index prefix")
    ap.add_argument("--source", type=Path, default=SHARED / "datasets" / "fashion-10k")
    ap.add_argument("--catalogue", type=Path, default=ROOT / "out/congruence/fashion-10k.jsonl")
    ap.add_argument("--data-dir", type=Path, default=ROOT / "out/congruence/embedded")
    ap.add_argument(
        "--image-model",
        type=Path,
        default=SHARED / "models" / "tf2_mobilenet_v2_1.0_224_ptq.tflite",
    )
    ap.add_argument("--image-tensor", default="GlobalPool")
    ap.add_argument("--anchors", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-ingest", action="store_true", help="both engines already indexed")
    args = ap.parse_args()

    seconds = {} if args.skip_ingest else ingest(args)
    records = load_records(args.catalogue)
    embedded = create_engine("embedded", args.data_dir)
    pushed = OpenSearchEngine(args.opensearch_url, args.prefix, pushdown=True)
    python = OpenSearchEngine(args.opensearch_url, args.prefix, pushdown=False)
    try:
        ids = embedded.all_ids()
        if ids != pushed.all_ids():
            sys.exit("the two engines hold different products: index both first")
        rng = np.random.default_rng(args.seed)
        anchors = [str(x) for x in rng.choice(ids, size=args.anchors, replace=False)]
        t0 = time.perf_counter()
        rows = measure(embedded, pushed, python, records, anchors, args.seed)
        query_s = time.perf_counter() - t0
    finally:
        embedded.close()
        pushed.close()
        python.close()

    print(
        f"\nfashion-10k: {len(ids):,} products in both engines; {args.anchors} anchors "
        f"(seed {args.seed}); top-{K}; queries took {query_s:.0f} s"
    )
    for engine, s in seconds.items():
        print(f"`lookalike index` into {engine}: {s:.0f} s")
    head = [
        "query",
        "anchors",
        "top-10 overlap",
        "identical lists",
        "Kendall tau-b (shared ids)",
        "Spearman rho (shared ids)",
        "max score diff",
        f"scores within {TOL:g}",
    ]
    print("| " + " | ".join(head) + " |")
    print("| " + " | ".join("---" for _ in head) + " |")
    for row in rows:
        print("| " + " | ".join(row.cells()) + " |")


if __name__ == "__main__":
    main()
