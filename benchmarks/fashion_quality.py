"""fashion-10k end to end: convert, index with MobileNetV2 (1280-d), measure quality and speed.

Prints ingest throughput (images/s), "more like this" precision@10 on category (every product
used once as the anchor, the anchor excluded), and query latency p50/p95.

    python benchmarks/fashion_quality.py [--limit N] [--text-model none]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.context import build_context  # noqa: E402
from indexer.run import index_catalogue  # noqa: E402
from lookalike.datasets import convert_dataset  # noqa: E402
from lookalike.settings import Settings  # noqa: E402
from reranker import similar  # noqa: E402

SHARED = ROOT.parent / "shared"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, default=SHARED / "datasets" / "fashion-10k")
    parser.add_argument(
        "--model", type=Path, default=SHARED / "models" / "tf2_mobilenet_v2_1.0_224_ptq.tflite"
    )
    parser.add_argument("--tensor", default="GlobalPool")
    parser.add_argument("--text-model", default="all-MiniLM-L6-v2")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    if not args.dataset.is_dir() or not args.model.is_file():
        print(f"skipped: {args.dataset} or {args.model} is absent (../shared holds them)")
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        catalogue = Path(tmp) / "fashion.jsonl"
        n = convert_dataset("fashion-10k", args.dataset, catalogue, args.limit)
        settings = Settings(
            data_dir=Path(tmp) / "data",
            image_model=str(args.model),
            image_tensor=args.tensor,
            text_model=args.text_model,
        )
        ctx = build_context(settings)
        start = time.perf_counter()
        report = index_catalogue(catalogue, ctx, batch_size=settings.batch_size)
        ingest_s = time.perf_counter() - start
        images = report.batches.embedded_images
        engine = ctx.engine

        products = engine.get(engine.all_ids())
        latencies: list[float] = []
        hits_same = 0
        total = 0
        with threadpool_limits(1):
            for pid, product in products.items():
                t0 = time.perf_counter()
                result = similar(engine, pid, args.k)
                latencies.append((time.perf_counter() - t0) * 1000)
                assert pid not in {h.id for h in result.hits}
                hits_same += sum(h.category == product.category for h in result.hits)
                total += args.k
        engine.close()

    precision = hits_same / total
    print(
        f"products: {n}, images embedded: {images}, image errors: "
        f"{len(report.batches.image_errors)}, rejected records: {len(report.record_errors)}"
    )
    print(f"model: {args.model.name} ({args.tensor}), text model: {args.text_model}")
    print("| figure | value |")
    print("| --- | --- |")
    print(f"| ingest throughput (images/s, whole pipeline) | {images / ingest_s:.1f} |")
    print(f"| ingest wall time (s) | {ingest_s:.1f} |")
    print(f"| more-like-this precision@{args.k} on category | {precision:.3f} |")
    print(f"| similar() p50 (ms) | {statistics.median(latencies):.2f} |")
    print(f"| similar() p95 (ms) | {percentile(latencies, 0.95):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
