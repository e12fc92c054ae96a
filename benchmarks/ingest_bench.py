"""Ingest throughput on the fashion-10k JPEGs: one image at a time, batched, 1 or 2 workers.

    python benchmarks/ingest_bench.py --limit 10000
    python benchmarks/ingest_bench.py --limit 10000 --rounds 2 \
      --config "image + text, batches of 64, 2 workers" \
      --config "image + text (ONNX int8), batches of 64, 2 workers"

Converts the first ``--limit`` fashion-10k products to a catalogue once, then indexes it into
a fresh embedded engine once per configuration, each in its own process (so peak memory is
that configuration's): the image model alone (int8 MobileNetV2, ``GlobalPool``, 1280-d) and
with the all-MiniLM-L6-v2 text model; one product per batch against batches of 64; in-process
against an ``ImagePool`` of worker processes; LiteRT ``num_threads=2`` for comparison. Timing
covers ``index_catalogue`` (worker start-up included, model loading in this process not). The
floor is the model's own inference time per image, one thread, measured alone. ``--rounds``
repeats the configurations interleaved (A, B, A, B) so a load change hits both. Table last.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared"
MODEL = SHARED / "models" / "tf2_mobilenet_v2_1.0_224_ptq.tflite"
DATASET = SHARED / "datasets" / "fashion-10k"
TEXT = "all-MiniLM-L6-v2"

# name -> (text model, batch size, workers, LiteRT threads, text backend)
CONFIGS: dict[str, tuple[str, int, int, int, str]] = {
    "image, one product at a time, in-process": ("none", 1, 1, 1, "torch"),
    "image, batches of 64, in-process": ("none", 64, 1, 1, "torch"),
    "image, batches of 64, LiteRT num_threads=2": ("none", 64, 1, 2, "torch"),
    "image, batches of 64, 2 workers": ("none", 64, 2, 1, "torch"),
    "image + text, batches of 64, in-process": (TEXT, 64, 1, 1, "torch"),
    "image + text, batches of 64, 2 workers": (TEXT, 64, 2, 1, "torch"),
    "image + text (ONNX int8), batches of 64, 2 workers": (TEXT, 64, 2, 1, "onnx"),
}


class TreeMemory:
    """Peak of the summed RSS of this process and its children, sampled every 50 ms."""

    def __init__(self) -> None:
        import psutil

        self._me = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(0.05):
            total = 0
            for p in [self._me, *self._me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a worker may just have exited
                    total += p.memory_info().rss
            self.peak = max(self.peak, total)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished children."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_one(catalogue: Path, name: str) -> dict[str, object]:
    """Index the catalogue with one configuration (in this process) and report its figures."""
    from indexer.context import build_context
    from indexer.run import index_catalogue
    from lookalike.settings import Settings
    from lookalike.vectorizers import create_image_vectorizer

    text, batch, workers, threads, backend = CONFIGS[name]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            image_model=str(MODEL),
            image_tensor="GlobalPool",
            text_model=text,
            text_backend=backend,  # type: ignore[arg-type]
        )
        ctx = build_context(settings)
        if threads != 1:
            ctx.image_vectorizer = create_image_vectorizer(
                str(MODEL), "GlobalPool", num_threads=threads
            )
        memory = TreeMemory()
        cpu0 = cpu_seconds()
        start = time.perf_counter()
        report = index_catalogue(catalogue, ctx, batch_size=batch, workers=workers)
        seconds = time.perf_counter() - start
        cpu = cpu_seconds() - cpu0  # the workers are joined by now: their time is counted
        peak = memory.stop()
        ctx.engine.close()
    b = report.batches
    return {
        "name": name,
        "products": report.products,
        "embedded": b.embedded_images,
        "reused": b.reused_images,
        "errors": len(b.image_errors),
        "seconds": seconds,
        "cpu_ms_per_image": cpu / max(1, b.embedded_images) * 1e3,
        "cpu_ms_per_product": cpu / max(1, report.products) * 1e3,
        "peak_mb": peak / 2**20,
    }


def floor(catalogue: Path, count: int) -> dict[str, float]:
    """Per image, one thread: JPEG decode, resize to 224x224, and the model's Invoke alone."""
    from lookalike.images import decode_image
    from lookalike.vectorizers.litert import LiteRTImageVectorizer

    paths = [json.loads(line)["images"][0] for line in catalogue.open()][:count]
    blobs = [Path(p).read_bytes() for p in paths]
    vec = LiteRTImageVectorizer(MODEL, "GlobalPool", num_threads=1)
    t0 = time.perf_counter()
    images = [decode_image(b, "bench") for b in blobs]
    decode = time.perf_counter() - t0
    t0 = time.perf_counter()
    tensors = [vec._prepare(img) for img in images]
    prepare = time.perf_counter() - t0
    interp, index = vec._interpreter, vec._input["index"]
    for x in tensors[:10]:  # warm-up
        interp.set_tensor(index, x)
        interp.invoke()
    t0 = time.perf_counter()
    for x in tensors:
        interp.set_tensor(index, x)
        interp.invoke()
    invoke = time.perf_counter() - t0
    n = len(blobs)
    return {
        "decode_ms": decode / n * 1e3,
        "prepare_ms": prepare / n * 1e3,
        "invoke_ms": invoke / n * 1e3,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=3000, help="fashion-10k products to index")
    ap.add_argument("--config", action="append", choices=list(CONFIGS), help="default: all")
    ap.add_argument("--floor-images", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=1, help="repeat the configurations, interleaved")
    ap.add_argument("--child", help=argparse.SUPPRESS)  # internal: run one configuration
    ap.add_argument("--catalogue", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_one(args.catalogue, args.child)))
        return 0
    if not DATASET.is_dir() or not MODEL.is_file():
        print(f"skipped: {DATASET} or {MODEL} is absent (../shared holds them)")
        return 0
    from lookalike.datasets import convert_dataset

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        catalogue = Path(tmp) / "fashion.jsonl"
        n = convert_dataset("fashion-10k", DATASET, catalogue, args.limit)
        fl = floor(catalogue, min(n, args.floor_images))
        for name in (args.config or list(CONFIGS)) * args.rounds:
            out = subprocess.run(
                [sys.executable, __file__, "--child", name, "--catalogue", str(catalogue)],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
            )
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"done: {name}", file=sys.stderr)
    per_image = fl["decode_ms"] + fl["prepare_ms"] + fl["invoke_ms"]
    print(f"\nfashion-10k, {n:,} products, {MODEL.name} (GlobalPool), {os.cpu_count()} cores")
    print(
        f"floor, one thread, per image: decode {fl['decode_ms']:.2f} ms, resize "
        f"{fl['prepare_ms']:.2f} ms, Invoke {fl['invoke_ms']:.2f} ms -> Invoke alone "
        f"{1e3 / fl['invoke_ms']:.0f} images/s per core, decode+resize+Invoke "
        f"{1e3 / per_image:.0f} images/s per core"
    )
    print(
        "| configuration | images/s | wall s | CPU ms/image (all processes) "
        "| CPU ms/product | embedded / reused / errors | peak RSS (tree) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        rate = float(r["embedded"]) / float(r["seconds"])  # type: ignore[arg-type]
        print(
            f"| {r['name']} | {rate:.1f} | {float(r['seconds']):.1f} "  # type: ignore[arg-type]
            f"| {float(r['cpu_ms_per_image']):.2f} "  # type: ignore[arg-type]
            f"| {float(r['cpu_ms_per_product']):.2f} "  # type: ignore[arg-type]
            f"| {r['embedded']} / {r['reused']} / {r['errors']} | {float(r['peak_mb']):.0f} MiB |"  # type: ignore[arg-type]
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
