"""The catalogue of ``engine_bench.Catalogue`` (batches of 5,000, as ``query_shapes.ensure_built``
upserts it) regenerated as columns: the same random draws in the same order, no Documents.

Saved once as ``.npy`` files (vectors float32, the 8 words of each product as vocabulary
indices: 5 title + 3 description, category/colour/brand codes, price) so every peer process
maps the same arrays; :func:`check_against_engine` compares a sample with the built engine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from engine_bench import Catalogue  # noqa: E402

BATCH = 5_000  # query_shapes.ensure_built's batch size: the draws depend on it
NAMES = ("vectors", "words", "category", "color", "brand", "price")
VOCAB = np.array([f"w{i}" for i in range(20_000)])


def build_columns(n: int, dim: int, folder: Path) -> Path:
    """Write the columns of an ``n``-product catalogue into ``folder`` (once)."""
    done = folder / "COLUMNS"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    cat = Catalogue(n, dim)
    vectors = np.lib.format.open_memmap(folder / "vectors.tmp.npy", "w+", np.float32, (n, dim))
    words = np.zeros((n, 8), np.uint16)
    codes = {k: np.zeros(n, np.uint8) for k in ("category", "color", "brand")}
    price = np.zeros(n, np.float64)
    for start in range(0, n, BATCH):
        m = min(BATCH, n - start)
        sl = slice(start, start + m)
        vectors[sl] = cat.vectors(m)
        # Generator.choice(array, p=...) draws the same indices as choice(len(array), p=...)
        words[sl] = cat.rng.choice(len(cat.vocab), size=m * 8, p=cat.word_p).reshape(m, 8)
        codes["category"][sl] = cat.rng.integers(0, 8, m)
        codes["color"][sl] = cat.rng.integers(0, 20, m)
        codes["brand"][sl] = cat.rng.integers(0, 50, m)
        price[sl] = np.round(cat.rng.uniform(5, 500, m), 2)
    vectors.flush()
    del vectors
    (folder / "vectors.tmp.npy").rename(folder / "vectors.npy")
    np.save(folder / "words.npy", words)
    for name, arr in codes.items():
        np.save(folder / f"{name}.npy", arr)
    np.save(folder / "price.npy", price)
    done.write_text(f"{n} products, {dim}-d\n")
    return folder


def load(folder: Path, mmap: bool = True) -> dict[str, np.ndarray]:
    """The columns, vectors memory-mapped unless ``mmap`` is False."""
    out = {name: np.load(folder / f"{name}.npy") for name in NAMES if name != "vectors"}
    out["vectors"] = np.load(folder / "vectors.npy", mmap_mode="r" if mmap else None)
    return out


def title(words: np.ndarray) -> str:
    return " ".join(VOCAB[words[:5]])


def description(words: np.ndarray) -> str:
    return " ".join(VOCAB[words[5:]])
