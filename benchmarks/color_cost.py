"""What the `color` vector costs at ingest: images/s with and without it, in one run.

    python benchmarks/color_cost.py --images 400 --rounds 5

The pipeline's own decode-and-embed step (``indexer.pipeline.embed_blobs``) on fashion-10k
JPEGs with MobileNetV2 (int8, ``GlobalPool``), one thread, in this process: the same images
are embedded ``--rounds`` times by each configuration, alternating (without, with, without,
...) so machine load falls on both alike. The colour histogram reads the images the image
model already decoded. Median and best images/s per configuration and the slowdowns (the
best round is the least disturbed by other work on a shared machine), and the colour
histogram's own time per image, measured alone; table last.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.pipeline import embed_blobs  # noqa: E402
from lookalike.images import decode_image, hash_bytes  # noqa: E402
from lookalike.vectorizers import create_image_vectorizer  # noqa: E402
from lookalike.vectorizers.baselines import color_vectorizer  # noqa: E402

SHARED = ROOT.parent / "shared"
MODEL = SHARED / "models" / "tf2_mobilenet_v2_1.0_224_ptq.tflite"
IMAGES = SHARED / "datasets" / "fashion-10k" / "images"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    files = sorted(IMAGES.glob("*.jpg"))[: args.images]
    items = [(hash_bytes(b), str(f), b) for f in files for b in [f.read_bytes()]]
    model = create_image_vectorizer(str(MODEL), "GlobalPool")
    color = color_vectorizer()
    embed_blobs(model, items[:32], color)  # warm up
    rates: dict[str, list[float]] = {"image model alone": [], "image model + color": []}
    for _ in range(args.rounds):
        for name, extra in (("image model alone", None), ("image model + color", color)):
            start = time.perf_counter()
            embed_blobs(model, items, extra)
            rates[name].append(len(items) / (time.perf_counter() - start))
    decoded = [decode_image(data, source) for _, source, data in items]
    start = time.perf_counter()
    color.embed_images(decoded)
    alone_ms = (time.perf_counter() - start) / len(decoded) * 1000
    base = statistics.median(rates["image model alone"])
    best = max(rates["image model alone"])
    print(f"\n{len(items)} images x {args.rounds} rounds, alternating, one thread")
    print("| configuration | images/s (median) | slowdown | images/s (best) | slowdown |")
    print("| --- | --- | --- | --- | --- |")
    for name, values in rates.items():
        rate, top = statistics.median(values), max(values)
        slow, slow_best = base / rate - 1, best / top - 1
        print(f"| {name} | {rate:.1f} | {slow:+.1%} | {top:.1f} | {slow_best:+.1%} |")
    print(f"\ncolour histogram alone: {alone_ms:.2f} ms per decoded image")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
