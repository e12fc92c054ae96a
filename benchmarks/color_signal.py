"""The `color` signal's weight, chosen on the held-out split (images alone), and tuned spaces.

    LOOKALIKE_DATA_DIR=... python benchmarks/color_signal.py --weights 0,0.05,0.1,0.15,0.2,0.3

Runs what ``lookalike eval --holdout --weight color=W`` runs for every weight ``W`` on an
indexed catalogue (fashion-10k, MobileNetV2 ``GlobalPool``): the test products of the seeded
80/20 split by id are the queries, text and attribute signals off, P@10 and nDCG@10 judged by
category and by colour on their own. ``--tuned`` adds the tuned space alone (after
``lookalike tune``). Table last.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lookalike.engines import open_engine  # noqa: E402
from lookalike.settings import Settings  # noqa: E402
from lookalike.tuning.train import TuneOptions, served_weights  # noqa: E402
from reranker.evaluation import evaluate_holdout  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default="0,0.05,0.1,0.15,0.2,0.3", help="colour weights")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="test queries (default: all)")
    ap.add_argument("--tuned", action="store_true", help="also the tuned space alone")
    args = ap.parse_args()
    configs = [(f"CNN + color {w}", {"color": float(w)}) for w in args.weights.split(",")]
    if args.tuned:
        configs.append(("tuned", served_weights(TuneOptions(), ("image", "color"))))
    rows = []
    with open_engine(Settings()) as engine:
        for name, weights in configs:
            start = time.perf_counter()
            r = evaluate_holdout(engine, ("category", "color"), 10, args.seed, weights, args.limit)
            cat, col = r.labels["category"], r.labels["color"]
            rows.append((name, cat.precision, cat.ndcg, col.precision, col.ndcg, r.test))
            print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    print("\n| configuration | category P@10 | category nDCG@10 | colour P@10 | colour nDCG@10 |")
    print("| --- | --- | --- | --- | --- |")
    for name, cp, cn, kp, kn, _ in rows:
        print(f"| {name} | {cp:.3f} | {cn:.3f} | {kp:.3f} | {kn:.3f} |")
    print(f"\n{rows[0][5]} test queries, seed {args.seed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
