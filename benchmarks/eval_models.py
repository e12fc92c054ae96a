"""Compare image representations on fashion-10k in one run, baselines beside them.

Leave-one-out "more like this" over the whole slice for every representation: the three
MobileNets, PCA-reduced MobileNetV2, raw pixels (Euclidean) and a colour histogram, and the
CNN with a colour signal beside it (score = (1 - w) * cos_cnn + w * cos_colour). Metrics at
k=10: precision on category, precision on colour, nDCG with graded relevance (same category
and colour = 2, same category = 1) and MRR on category.

    .venv/bin/python benchmarks/eval_models.py [--limit 3000]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lookalike.datasets import fashion_records  # noqa: E402
from lookalike.images import load_image  # noqa: E402
from lookalike.vectorizers import create_image_vectorizer  # noqa: E402
from lookalike.vectorizers.baselines import PixelVectorizer  # noqa: E402
from lookalike.vectors import unit_rows  # noqa: E402
from reranker.evaluation import LabelJudge, score  # noqa: E402

SHARED = ROOT.parent / "shared"
MODELS = SHARED / "models"
CNNS = {
    "MobileNetV2 tf2 (1280-d)": ("tf2_mobilenet_v2_1.0_224_ptq.tflite", "GlobalPool"),
    "MobileNetV2 quant (1280-d)": (
        "mobilenet_v2_1.0_224_quant.tflite",
        "MobilenetV2/Logits/AvgPool",
    ),
    "MobileNetV1 extractor (1024-d)": (
        "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite",
        None,
    ),
}
Similarity = Callable[[np.ndarray], np.ndarray]  # rows -> similarities to all items


def top_k(sim_rows: Similarity, n: int, k: int, chunk: int = 512) -> np.ndarray:
    """Indices of each item's k most similar others (itself excluded)."""
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, chunk):
        rows = np.arange(start, min(n, start + chunk))
        sims = sim_rows(rows)
        sims[np.arange(len(rows)), rows] = -np.inf
        part = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
        out[rows] = np.take_along_axis(part, order, axis=1)
    return out


def cosine(matrix: np.ndarray) -> Similarity:
    return lambda rows: matrix[rows] @ matrix.T


def euclidean(matrix: np.ndarray) -> Similarity:
    sq = (matrix**2).sum(axis=1)
    return lambda rows: -(sq[rows, None] - 2 * matrix[rows] @ matrix.T + sq[None, :])


def pca(matrix: np.ndarray, dim: int) -> np.ndarray:
    centred = matrix - matrix.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return unit_rows(centred @ vt[:dim].T)


def evaluate(neighbours: np.ndarray, ids: list[str], judges: dict[str, LabelJudge]) -> dict:
    figures = {}
    for name, judge in judges.items():
        rows = []
        for i, anchor in enumerate(ids):
            grades_all = judge.grades(anchor)
            ranked = neighbours[i]
            ideal = [int(g) for g in grades_all[grades_all > 0]]
            rows.append(([int(grades_all[j]) for j in ranked], ideal, ""))
        figures[name] = score(rows, neighbours.shape[1], name).overall
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, default=SHARED / "datasets" / "fashion-10k")
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    if not args.dataset.is_dir() or not MODELS.is_dir():
        print(f"skipped: {args.dataset} or {MODELS} is absent (../shared holds them)")
        return 0
    records = fashion_records(args.dataset, args.dataset, args.limit)
    ids = [str(r["id"]) for r in records]
    images = [load_image(str(args.dataset / r["images"][0])).image for r in records]  # type: ignore[index]
    cat = [r["category"] for r in records]
    col = [r["color"] for r in records]
    judges = {
        "category": LabelJudge(ids, [[c] for c in cat]),
        "colour": LabelJudge(ids, [[c] for c in col]),
        "graded": LabelJudge(ids, [[a, b] for a, b in zip(cat, col, strict=True)]),
    }

    reps: dict[str, Similarity] = {}
    timings: dict[str, float] = {}
    for label, (file, tensor) in CNNS.items():
        vec = create_image_vectorizer(str(MODELS / file), tensor)
        start = time.perf_counter()
        reps[label] = cosine(vec.embed_images(images))
        timings[label] = (time.perf_counter() - start) / len(images) * 1000
    cnn = create_image_vectorizer(
        str(MODELS / "tf2_mobilenet_v2_1.0_224_ptq.tflite"), "GlobalPool"
    ).embed_images(images)
    colour = create_image_vectorizer("color-histogram").embed_images(images)
    for dim in (640, 320, 128):
        reps[f"MobileNetV2 tf2 + PCA {dim}-d"] = cosine(pca(cnn, dim))
    reps["baseline: raw pixels 16x16 (Euclidean)"] = euclidean(PixelVectorizer().raw(images))
    reps["baseline: colour histogram"] = cosine(colour)
    for w in (0.1, 0.2, 0.3, 0.5):
        reps[f"MobileNetV2 tf2 + colour w={w}"] = lambda rows, w=w: (
            (1 - w) * (cnn[rows] @ cnn.T) + w * (colour[rows] @ colour.T)
        )

    print(f"fashion-10k slice: {len(ids)} products, leave-one-out, k={args.k}")
    print(
        f"| representation | P@{args.k} category | P@{args.k} colour | nDCG@{args.k} graded "
        f"| MRR category | ms/image |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for label, sim in reps.items():
        f = evaluate(top_k(sim, len(ids), args.k), ids, judges)
        ms = f"{timings[label]:.1f}" if label in timings else "-"
        print(
            f"| {label} | {f['category'].precision:.3f} | {f['colour'].precision:.3f} "
            f"| {f['graded'].ndcg:.3f} | {f['category'].mrr:.3f} | {ms} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
