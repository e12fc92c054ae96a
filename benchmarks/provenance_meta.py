"""What 50k provenance records cost the embedded engine's hot reads.

Gap filling keeps one provenance record per product it wrote a value to. Before issue 13 they
were ``inferred:<id>`` meta rows, and ``active_models()`` (called by every ``image_vectors()``
and every small ``vectors()`` read) found its ``active_model:*`` rows with a ``LIKE`` that
scanned the whole meta table. Run the same script on both versions of the code:

    PYTHONPATH=/path/to/old/checkout python benchmarks/provenance_meta.py   # before
    PYTHONPATH=$PWD python benchmarks/provenance_meta.py                    # after

It writes N products and N provenance records (through ``record_provenance`` when the engine
has it, else as meta rows), then times ``active_models()``, ``image_vectors([id])`` and
``vectors([id])`` (median of many calls).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lookalike.documents import Document, ImageEntry
from lookalike.engines.embedded import EmbeddedEngine


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=300)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedEngine(Path(tmp) / "data") as engine:
        docs = []
        for i in range(args.records):
            v = rng.standard_normal(64).astype(np.float32)
            docs.append(
                Document(
                    id=f"p{i}",
                    images=[ImageEntry(0, f"https://x/{i}.jpg", f"h{i}", v / np.linalg.norm(v))],
                    models={"image": "img@1"},
                    fingerprint=f"f{i}",
                )
            )
        for start in range(0, len(docs), 5000):
            engine.upsert(docs[start : start + 5000])
        entry = {"color": {"value": "red", "source": "gapfill", "confidence": 0.8, "at": 0.0}}
        record = getattr(engine, "record_provenance", None)
        if record is not None:
            record({d.id: entry for d in docs})
            layout = "provenance table"
        else:
            with engine.store.write() as cur:
                cur.executemany(
                    "INSERT INTO meta(key, value) VALUES (?, ?)",
                    [(f"inferred:{d.id}", json.dumps(entry)) for d in docs],
                )
            layout = "inferred:<id> meta rows"
        result = {
            "layout": layout,
            "records": args.records,
            "active_models_ms": median_ms(engine.store.active_models, args.repeat),
            "image_vectors_1_ms": median_ms(lambda: engine.image_vectors(["p7"]), args.repeat),
            "vectors_1_ms": median_ms(lambda: engine.vectors(["p7"]), args.repeat),
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
