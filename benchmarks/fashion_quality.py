"""fashion-10k end to end: convert, index with MobileNetV2 (1280-d), measure quality and speed.

Prints ingest throughput (images/s, the whole pipeline: read, decode, embed, text, upsert),
"more like this" precision@10 on category (every product used once as the anchor, the
anchor excluded) and the latency of each such query.

    .venv/bin/python benchmarks/fashion_quality.py [--limit N] [--text-model none]
"""

from __future__ import annotations

import argparse
import resource
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
from reranker.evaluation import evaluate  # noqa: E402

SHARED = ROOT.parent / "shared"
VISUAL_ONLY = {"text": 0.0, "attributes": 0.0, "keyword": 0.0}


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
        with threadpool_limits(1):
            # The image model alone (text and attributes carry the category label) ...
            quality = evaluate(ctx.engine, ["category"], args.k, weights=VISUAL_ONLY)
            # ... and the default blend of signals users get.
            blended = evaluate(ctx.engine, ["category"], args.k)
        ctx.engine.close()

    images = report.batches.embedded_images
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"products: {n}, images embedded: {images}, image errors: "
        f"{len(report.batches.image_errors)}, rejected records: {len(report.record_errors)}"
    )
    print(f"image model: {args.model.name} ({args.tensor}), text model: {args.text_model}")
    print("| figure | value |")
    print("| --- | --- |")
    print(f"| ingest throughput, whole pipeline (images/s) | {images / ingest_s:.1f} |")
    print(f"| ingest wall time (s) | {ingest_s:.1f} |")
    print(
        f"| more-like-this precision@{args.k} on category, image model alone "
        f"({quality.overall.queries} queries) "
        f"| {quality.overall.precision:.3f} |"
    )
    print(
        f"| precision@{args.k} on category, default signal blend (text and attributes too) "
        f"| {blended.overall.precision:.3f} |"
    )
    print(f"| similar() p50 (ms) | {quality.p50_ms:.2f} |")
    print(f"| similar() p95 (ms) | {quality.p95_ms:.2f} |")
    print(f"| peak RSS (MB) | {rss_mb:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
