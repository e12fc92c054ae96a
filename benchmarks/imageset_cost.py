"""Cost of comparing products as image sets: 500 candidates x 5 images against a 5-image anchor.

1. The scoring alone (``reranker.imagesets``): packing the window's sets into one tensor, then
   each method's ``set_scores``; p50/p95 over ``--runs`` repetitions, one thread.
2. The whole ``reranker.run`` ("more like this", window 500, k 10, visual signal only) on the
   embedded engine over ``--products`` products with 5 images each, per method: candidates
   by kNN, the window's per-image vectors read from SQLite, set scoring, paging, hydration.

Vectors are random unit 1280-d rows (the MobileNetV2 width); cost does not depend on content.

    .venv/bin/python benchmarks/imageset_cost.py [--runs 200] [--products 2000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lookalike.documents import Document, ImageEntry  # noqa: E402
from lookalike.engines.embedded import EmbeddedEngine  # noqa: E402
from reranker import Anchor, RerankRequest, run  # noqa: E402
from reranker.imagesets import METHODS, SetOptions, pack, set_scores  # noqa: E402

DIM = 1280
VISUAL_ONLY = {"visual": 1.0, "text": 0.0, "attributes": 0.0, "keyword": 0.0}


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float, float, float]:
    """Wall-clock p50 and p95, and process CPU-time p50 and p95, in milliseconds (after two
    warm-up calls). CPU time is what the step costs one core; wall time also counts waiting
    for a core on a busy machine."""
    fn()
    fn()
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    w50, w95 = np.percentile(wall, [50, 95])
    c50, c95 = np.percentile(cpu, [50, 95])
    return float(w50), float(w95), float(c50), float(c95)


def scoring_only(runs: int, n: int, images: int) -> dict[str, tuple[float, float, float, float]]:
    rng = np.random.default_rng(0)
    anchor = unit(rng, images)
    window = [unit(rng, images) for _ in range(n)]
    packed = pack(window)
    out = {f"pack {n} sets": timed(partial(pack, window), runs)}
    variants = [SetOptions(m) for m in METHODS] + [SetOptions("assignment", threshold=0.2, m=3)]
    for opts in variants:
        name = opts.method if opts.m is None else "assignment(s=0.2,m=3)"
        out[f"score {name}"] = timed(partial(set_scores, anchor, packed, opts), runs)
    return out


def whole_run(
    runs: int, products: int, images: int, window: int
) -> dict[str, tuple[float, float, float, float]]:
    rng = np.random.default_rng(1)
    out: dict[str, tuple[float, float, float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        engine = EmbeddedEngine(Path(tmp) / "data")
        for lo in range(0, products, 500):
            docs = []
            for i in range(lo, min(products, lo + 500)):
                vecs = unit(rng, images)
                docs.append(
                    Document(
                        id=f"p{i:06d}",
                        title=f"product {i}",
                        images=[
                            ImageEntry(j, f"https://img/{i}/{j}.jpg", f"h{i}-{j}", vecs[j])
                            for j in range(images)
                        ],
                        models={"image": "bench@1"},
                        fingerprint=f"fp{i}",
                    )
                )
            engine.upsert(docs)
        engine.refresh()
        anchors = [f"p{i:06d}" for i in rng.choice(products, size=runs + 2)]
        ids = [f"p{i:06d}" for i in range(products)]

        def fetch() -> object:
            return engine.image_vectors(list(rng.choice(ids, size=window, replace=False)))

        out[f"engine.image_vectors {window} ids"] = timed(fetch, runs)
        for method in METHODS:

            def one(m: str = method, queue: Iterator[str] = iter(anchors)) -> object:
                req = RerankRequest(
                    anchors=(Anchor(next(queue)),),
                    weights=VISUAL_ONLY,
                    window=window,
                    image_set=SetOptions(m),
                )
                return run(engine, req)

            out[f"reranker.run {method}"] = timed(one, runs)
        engine.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--products", type=int, default=2000)
    args = parser.parse_args()
    with threadpool_limits(1):
        rows = scoring_only(args.runs, args.window, args.images)
        rows.update(whole_run(args.runs, args.products, args.images, args.window))
    print(
        f"\n{args.window} candidates x {args.images} images vs a {args.images}-image anchor,"
        f" {DIM}-d, one thread, {args.runs} runs; whole run over {args.products} products"
    )
    print(f"{'step':<34} {'wall p50':>9} {'wall p95':>9} {'cpu p50':>9} {'cpu p95':>9}  (ms)")
    for name, (w50, w95, c50, c95) in rows.items():
        print(f"{name:<34} {w50:9.2f} {w95:9.2f} {c50:9.2f} {c95:9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
