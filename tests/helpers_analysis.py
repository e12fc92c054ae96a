"""A real embedded engine holding products whose visual vectors are chosen by the test.

Each product gets a real drawn image file (for thumbnails) and an image vector near one of a
few orthogonal centres, so k-means and neighbour votes have a known right answer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lookalike.documents import Document, ImageEntry
from lookalike.engines.embedded import EmbeddedEngine
from tests.conftest import draw_product

MODEL = "synthetic@1"
GROUP_COLORS = ("red", "green", "blue", "yellow")


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def grouped_docs(
    folder: Path, groups: int = 3, per: int = 8, dim: int = 16, noise: float = 0.05, seed: int = 0
) -> list[Document]:
    """``groups`` x ``per`` products: product ``g<i>-<j>`` lies near axis ``i``, coloured
    ``GROUP_COLORS[i]``, category ``cat<i>``."""
    rng = np.random.default_rng(seed)
    docs = []
    for g in range(groups):
        for j in range(per):
            pid = f"g{g}-{j}"
            vec = unit(np.eye(dim)[g] + noise * rng.standard_normal(dim))
            image = draw_product(folder / f"{pid}.jpg", GROUP_COLORS[g], "circle", seed=g * 100 + j)
            docs.append(
                Document(
                    id=pid,
                    title=f"{GROUP_COLORS[g]} thing {j}",
                    category=f"cat{g}",
                    color=GROUP_COLORS[g],
                    attributes={"fit": ["regular"]},
                    images=[ImageEntry(0, str(image), hash=f"h-{pid}", vector=vec)],
                    models={"image": MODEL},
                )
            )
    return docs


def grouped_engine(folder: Path, **kwargs: object) -> EmbeddedEngine:
    engine = EmbeddedEngine(folder / "data")
    engine.upsert(grouped_docs(folder / "img", **kwargs))  # type: ignore[arg-type]
    engine.refresh()
    return engine
