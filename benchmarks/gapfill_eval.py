"""fashion-10k: how well does gap filling from visual neighbours guess hidden labels? (issue 6)

The catalogue is converted with ``lookalike.datasets``; with a fixed seed, 20% of the
``category`` (articleType) values and, independently, 20% of the ``color`` (baseColour) values
are removed before indexing (tf2 MobileNetV2 GlobalPool image vectors, no text model). Gap
filling then proposes a value for every product missing each field, from the similarity-
weighted vote of its ``--neighbours`` visual neighbours. For several confidence thresholds it
prints the accuracy of the proposals at or above the threshold and the share of the hidden
values they cover, next to the majority-value baseline.

    .venv/bin/python benchmarks/gapfill_eval.py [--limit N] [--neighbours 10]
        [--hide 0.2] [--seed 0] [--data-dir DIR]   # keep (or reuse) the index
        [--timings]   # also: seconds for clusters, the elbow curve and the map on this index
        [--tune]      # also: `lookalike tune` on the labels left, then the vote in its space

With ``--tune`` the head is trained on the labels that remain (the hidden products are
unlabelled products to it, and get tuned vectors all the same) and every table is printed
twice: neighbours in the raw image space, then in the tuned head's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.context import build_context  # noqa: E402
from indexer.run import index_catalogue  # noqa: E402
from lookalike.analysis.clusters import cluster_population, inertia_curve  # noqa: E402
from lookalike.analysis.gapfill import propose  # noqa: E402
from lookalike.analysis.population import visual_population  # noqa: E402
from lookalike.analysis.visualmap import map_population  # noqa: E402
from lookalike.datasets import fashion_records  # noqa: E402
from lookalike.engines import Engine, open_engine  # noqa: E402
from lookalike.settings import Settings  # noqa: E402

SHARED = ROOT.parent / "shared"
FIELDS = ("category", "color")
THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9)
TRUTH_KEY = "gapfill-eval:truth"


def hide(records: list[dict], share: float, seed: int) -> dict[str, dict[str, str]]:
    """Remove ``share`` of each field's values (independently per field); the hidden truth."""
    rng = np.random.default_rng(seed)
    truth: dict[str, dict[str, str]] = {}
    for field in FIELDS:
        labelled = [r for r in records if r.get(field)]
        picks = rng.choice(len(labelled), size=round(share * len(labelled)), replace=False)
        truth[field] = {}
        for i in sorted(picks.tolist()):
            truth[field][str(labelled[i]["id"])] = str(labelled[i][field])
            labelled[i][field] = None
    return truth


def score(
    proposals: dict[str, tuple[str, float]], truth: dict[str, str]
) -> list[tuple[float, float, float, int]]:
    """(threshold, accuracy, coverage, proposals kept) for each threshold."""
    rows = []
    for t in THRESHOLDS:
        kept = [(pid, v) for pid, (v, c) in proposals.items() if c >= t and pid in truth]
        correct = sum(v == truth[pid] for pid, v in kept)
        accuracy = correct / len(kept) if kept else float("nan")
        rows.append((t, accuracy, len(kept) / len(truth), len(kept)))
    return rows


def timings(engine: Engine) -> None:
    """Wall seconds of the merchandiser tools on this index (one BLAS thread, as the API)."""
    t0 = time.perf_counter()
    pop = visual_population(engine)
    print(f"\n| step ({len(pop.ids)} products) | seconds |")
    print("| --- | --- |")
    print(f"| read the visual vectors | {time.perf_counter() - t0:.2f} |")
    t0 = time.perf_counter()
    pop.digest()
    print(f"| cache key (hash of ids and vectors) | {time.perf_counter() - t0:.2f} |")
    for k in (8, 50):
        t0 = time.perf_counter()
        cluster_population(pop, k)
        print(f"| k-means, k={k} | {time.perf_counter() - t0:.1f} |")
    t0 = time.perf_counter()
    inertia_curve(pop, range(2, 21))
    print(f"| elbow curve, k = 2..20 | {time.perf_counter() - t0:.1f} |")
    for n in sorted({min(2000, len(pop.ids)), len(pop.ids)}):
        t0 = time.perf_counter()
        map_population(visual_population(engine, limit=n))
        print(f"| t-SNE map of {n} products | {time.perf_counter() - t0:.1f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=SHARED / "datasets" / "fashion-10k")
    ap.add_argument(
        "--model", type=Path, default=SHARED / "models" / "tf2_mobilenet_v2_1.0_224_ptq.tflite"
    )
    ap.add_argument("--tensor", default="GlobalPool")
    ap.add_argument("--limit", type=int, default=None, help="first N products (quick runs)")
    ap.add_argument("--neighbours", type=int, default=10)
    ap.add_argument("--hide", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--timings", action="store_true", help="time clusters, elbow and map too")
    ap.add_argument("--tune", action="store_true", help="also vote in a tuned head's space")
    args = ap.parse_args()
    if not args.dataset.is_dir() or not args.model.is_file():
        print(f"skipped: {args.dataset} or {args.model} is absent (../shared holds them)")
        return 0
    tmp = tempfile.TemporaryDirectory()
    data_dir = args.data_dir or Path(tmp.name) / "data"
    settings = Settings(
        data_dir=data_dir, image_model=str(args.model), image_tensor=args.tensor, text_model="none"
    )
    with open_engine(settings) as engine:
        stored = engine.get_meta(TRUTH_KEY) if engine.count() else None
    if stored is None:
        folder = Path(tmp.name)
        records = fashion_records(args.dataset, folder, args.limit)
        truth = hide(records, args.hide, args.seed)
        catalogue = folder / "fashion.jsonl"
        catalogue.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        ctx = build_context(settings)
        t0 = time.perf_counter()
        index_catalogue(catalogue, ctx, batch_size=settings.batch_size)
        ctx.engine.set_meta(TRUTH_KEY, json.dumps(truth))
        print(f"indexed {len(records)} products in {time.perf_counter() - t0:.0f} s")
        ctx.engine.close()
    else:
        truth = json.loads(stored)
    spaces = ["image"]
    if args.tune:
        from lookalike.tuning.train import TuneOptions, tune

        with open_engine(settings) as engine:
            report = tune(engine, TuneOptions(labels=FIELDS, seed=args.seed))
        print(f"tuned on the labels left in {report.seconds:.0f} s: held-out P@10 {report.after}")
        spaces.append("tuned")
    with open_engine(settings) as engine, threadpool_limits(2):
        n_products = engine.count()
        products = engine.get(engine.all_ids())
        print(
            f"fashion-10k: {n_products} products; hidden {args.hide:.0%} of each field "
            f"(seed {args.seed}); {args.neighbours} visual neighbours vote; "
            f"image {args.model.name}, no text model"
        )
        for field, space in [(f, s) for f in FIELDS for s in spaces]:
            t0 = time.perf_counter()
            found = propose(engine, field, k=args.neighbours, limit=None, space=space)
            took = time.perf_counter() - t0
            proposals = {p.id: (p.value, p.confidence) for p in found}
            hidden = truth[field]
            known = Counter(getattr(p, field) for p in products.values() if getattr(p, field))
            value, _ = known.most_common(1)[0]
            baseline = sum(v == value for v in hidden.values()) / len(hidden)
            print(
                f"\n{field} ({space} space): {len(hidden)} hidden, {len(known)} distinct values; "
                "majority value "
                f"'{value}' is right for {baseline:.3f}; proposals in {took:.1f} s"
            )
            print("| min confidence | accuracy | coverage | proposals |")
            print("| --- | --- | --- | --- |")
            for t, acc, cov, kept in score(proposals, hidden):
                print(f"| {t:.1f} | {acc:.3f} | {cov:.3f} | {kept} |")
    if args.timings:
        with open_engine(settings) as engine, threadpool_limits(1):
            timings(engine)
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
