"""Grocery products as image sets: set similarity methods against a single-image baseline.

GroceryStoreDataset (../shared/datasets/grocery): 81 products, 20-75 shop photos each, plus one
studio ("iconic") image. Photos are embedded once with the tf2 MobileNetV2 (1280-d GlobalPool)
through ``lookalike.vectorizers`` and cached in ``--cache`` (a temp folder by default).

1. **Set -> set.** For every repetition (``--repeats``, seeded), each product's photos are
   shuffled and split into a query set (``--query-size``) and a disjoint catalogue set
   (``--catalogue-size``); every query set is ranked against the 81 catalogue sets with
   ``reranker.imagesets.set_scores``. The single-image baseline compares the first query photo
   with the first catalogue photo of each product. Product accuracy@1 and @5.
2. **Shop photo -> catalogue product.** The catalogue is the 81 iconic images (one image per
   product); each shop photo is a query (all methods agree for one image against one), and
   query *sets* of shop photos are ranked against the iconic images per method.

    .venv/bin/python benchmarks/grocery_sets.py [--repeats 20] [--query-size 5]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lookalike.images import decode_image  # noqa: E402
from lookalike.vectorizers import create_image_vectorizer  # noqa: E402
from reranker.imagesets import SetOptions, pack, set_scores  # noqa: E402

SHARED = ROOT.parent / "shared"
VARIANTS = [
    SetOptions("mean"),
    SetOptions("max"),
    SetOptions("greedy"),
    SetOptions("assignment"),
    SetOptions("greedy", m=3),
    SetOptions("assignment", m=3),
    SetOptions("assignment", threshold=0.5),
]


def label(opts: SetOptions) -> str:
    extra = [f"s={opts.threshold}" if opts.threshold is not None else ""]
    extra.append(f"m={opts.m}" if opts.m is not None else "")
    tail = ",".join(e for e in extra if e)
    return opts.method + (f"({tail})" if tail else "")


def read_dataset(root: Path) -> tuple[list[str], np.ndarray, list[str]]:
    """Shop photo paths with product ids (train + val), and the iconic path of each product."""
    paths: list[str] = []
    labels: list[int] = []
    for split in ("train.txt", "val.txt"):
        for line in (root / split).read_text().splitlines():
            if line.strip():
                path, class_id, _ = (p.strip() for p in line.split(","))
                paths.append(path)
                labels.append(int(class_id))
    with open(root / "classes.csv", newline="") as fh:
        rows = sorted((int(r[1]), r[4].lstrip("/")) for r in list(csv.reader(fh))[1:])
    return paths, np.array(labels), [path for _, path in rows]


def embed(root: Path, paths: list[str], model: Path, tensor: str, cache: Path) -> np.ndarray:
    """Unit vectors of the images, read from the cache when the same list was embedded before."""
    key = hashlib.sha256("\n".join([str(model), tensor, *paths]).encode()).hexdigest()[:16]
    file = cache / f"grocery-{key}.npy"
    if file.exists():
        return np.load(file)
    vectorizer = create_image_vectorizer(str(model), tensor, num_threads=2)
    out = []
    start = time.perf_counter()
    for lo in range(0, len(paths), 64):
        images = [decode_image((root / p).read_bytes(), p) for p in paths[lo : lo + 64]]
        out.append(vectorizer.embed_images(images))
    vectors = np.concatenate(out).astype(np.float32)
    print(f"embedded {len(paths)} images in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(file, vectors)
    return vectors


def accuracy(scores: np.ndarray, truth: np.ndarray, ks: tuple[int, ...] = (1, 5)) -> list[float]:
    """Share of queries (rows) whose true product is among the top k (ties count against)."""
    true_score = scores[np.arange(len(truth)), truth]
    better = (scores > true_score[:, None]).sum(axis=1)
    tied = (scores == true_score[:, None]).sum(axis=1) - 1
    rank = better + tied  # 0 = strictly first
    return [float(np.mean(rank < k)) for k in ks]


def score_table(
    queries: list[np.ndarray], catalogue: list[np.ndarray], opts: SetOptions
) -> np.ndarray:
    """``scores[q, p]`` of every query set against every catalogue set."""
    packed = pack(catalogue)
    return np.stack([set_scores(q, packed, opts) for q in queries])


def set_to_set(
    vectors: np.ndarray, labels: np.ndarray, n_query: int, n_cat: int, repeats: int
) -> dict[str, list[float]]:
    products = np.unique(labels)
    sums: dict[str, np.ndarray] = {}
    for seed in range(repeats):
        rng = np.random.default_rng(seed)
        queries, catalogue = [], []
        for p in products:
            photos = rng.permutation(np.flatnonzero(labels == p))
            queries.append(vectors[photos[:n_query]])
            catalogue.append(vectors[photos[n_query : n_query + n_cat]])
        truth = np.arange(len(products))
        rows = {
            "single image": score_table(
                [q[:1] for q in queries], [c[:1] for c in catalogue], SetOptions()
            )
        }
        for opts in VARIANTS:
            rows[label(opts)] = score_table(queries, catalogue, opts)
        for name, table in rows.items():
            sums[name] = sums.get(name, np.zeros(2)) + np.array(accuracy(table, truth))
    return {name: list(total / repeats) for name, total in sums.items()}


def shop_to_iconic(
    vectors: np.ndarray, labels: np.ndarray, iconic: np.ndarray, n_query: int, repeats: int
) -> dict[str, list[float]]:
    single = vectors @ iconic.T
    out = {"one shop photo": accuracy(single, labels)}
    catalogue = [row[None, :] for row in iconic]
    products = np.unique(labels)
    sums: dict[str, np.ndarray] = {}
    for seed in range(repeats):
        rng = np.random.default_rng(seed)
        queries = [
            vectors[rng.permutation(np.flatnonzero(labels == p))[:n_query]] for p in products
        ]
        for opts in VARIANTS:
            table = score_table(queries, catalogue, opts)
            name = f"{n_query} shop photos, {label(opts)}"
            sums[name] = sums.get(name, np.zeros(2)) + np.array(accuracy(table, products))
    out.update({name: list(total / repeats) for name, total in sums.items()})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, default=SHARED / "datasets" / "grocery" / "dataset")
    parser.add_argument(
        "--model", type=Path, default=SHARED / "models" / "tf2_mobilenet_v2_1.0_224_ptq.tflite"
    )
    parser.add_argument("--tensor", default="GlobalPool")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "lookalike-bench"
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--query-size", type=int, default=5)
    parser.add_argument("--catalogue-size", type=int, default=5)
    args = parser.parse_args()
    if not args.dataset.is_dir() or not args.model.is_file():
        print(f"skipped: {args.dataset} or {args.model} is absent (../shared holds them)")
        return 0
    paths, labels, iconic_paths = read_dataset(args.dataset)
    vectors = embed(args.dataset, paths + iconic_paths, args.model, args.tensor, args.cache)
    shop, iconic = vectors[: len(paths)], vectors[len(paths) :]
    n_products = len(iconic_paths)
    print(f"{len(paths)} shop photos of {n_products} products, {args.repeats} seeded splits")
    sections = [
        (
            f"set -> set: {args.query_size} query photos vs {args.catalogue_size} catalogue photos",
            set_to_set(shop, labels, args.query_size, args.catalogue_size, args.repeats),
        ),
        (
            f"set -> set, unequal sizes: 2 query photos vs {args.catalogue_size} catalogue photos",
            set_to_set(shop, labels, 2, args.catalogue_size, args.repeats),
        ),
        (
            "shop photo(s) -> catalogue product (iconic studio image)",
            shop_to_iconic(shop, labels, iconic, args.query_size, args.repeats),
        ),
    ]
    for title, rows in sections:
        print(f"\n{title}")
        print(f"{'method':<34} {'acc@1':>6} {'acc@5':>6}")
        for name, (a1, a5) in rows.items():
            print(f"{name:<34} {a1:6.3f} {a5:6.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
