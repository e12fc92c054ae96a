"""A 2-D map of the catalogue: t-SNE (or UMAP) of the visual vectors, as points or a thumbnail grid.

The layout is reproducible (fixed seed) and scaled to [0, 1] on both axes. Vectors are first
reduced to at most 50 dimensions with PCA, the usual preparation for t-SNE.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookalike.analysis.population import Population, visual_population
from lookalike.analysis.thumbnails import ImageAccess, thumbnails
from lookalike.engines import Engine
from lookalike.errors import ConfigError, InvalidInput
from lookalike.filters import Filter
from lookalike.progress import Progress

SEED = 0
METHODS = ("tsne", "umap")
PCA_DIMS = 50
MAX_GRID = 100


@dataclass(frozen=True)
class VisualMap:
    ids: list[str]
    coords: np.ndarray  # float [n, 2] in [0, 1]


def _scale(coords: np.ndarray) -> np.ndarray:
    low, high = coords.min(axis=0), coords.max(axis=0)
    span = np.where(high - low > 0, high - low, 1.0)
    return np.clip((coords - low) / span, 0.0, 1.0)


def embed_2d(matrix: np.ndarray, method: str = "tsne") -> np.ndarray:
    """Rows placed in the unit square so that visually close products lie close."""
    if method not in METHODS:
        raise InvalidInput(f"unknown map method {method!r}: expected one of {', '.join(METHODS)}")
    n = matrix.shape[0]
    if n < 2:
        raise InvalidInput(f"a map needs at least 2 products with a visual vector, got {n}")
    from sklearn.decomposition import PCA

    dims = min(PCA_DIMS, n, matrix.shape[1])
    reduced = PCA(n_components=dims, random_state=SEED).fit_transform(matrix) if n > 2 else matrix
    if n <= 4:  # too few for a neighbour embedding: the first two principal axes
        flat = np.zeros((n, 2))
        flat[:, : min(2, reduced.shape[1])] = reduced[:, :2]
        return _scale(flat)
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise ConfigError(
                "UMAP needs the optional package: pip install 'lookalike[umap]'"
            ) from None
        reducer = umap.UMAP(n_neighbors=min(15, n - 1), random_state=SEED, n_jobs=1)
        return _scale(np.asarray(reducer.fit_transform(reduced), dtype=np.float64))
    from sklearn.manifold import TSNE

    tsne = TSNE(
        n_components=2,
        perplexity=float(min(30.0, (n - 1) / 3)),
        init="pca",
        random_state=SEED,
        n_jobs=1,
    )
    return _scale(np.asarray(tsne.fit_transform(reduced), dtype=np.float64))


def map_population(pop: Population, method: str = "tsne") -> VisualMap:
    return VisualMap(list(pop.ids), embed_2d(pop.matrix, method))


def visual_map(
    engine: Engine,
    filters: Filter | None = None,
    limit: int | None = 2000,
    method: str = "tsne",
) -> VisualMap:
    """The map of the catalogue (or the products matching ``filters``), ``limit`` at most."""
    return map_population(visual_population(engine, filters, limit), method)


def map_points(vmap: VisualMap, engine: Engine) -> dict[str, Any]:
    """The API answer: each product's position with its title, category and colour."""
    products = engine.get(vmap.ids)
    points = []
    for pid, (x, y) in zip(vmap.ids, vmap.coords.tolist(), strict=True):
        p = products.get(pid)
        points.append(
            {
                "id": pid,
                "x": float(x),
                "y": float(y),
                "title": p.title if p else None,
                "category": p.category if p else None,
                "color": p.color if p else None,
            }
        )
    return {"points": points}


def grid_assignment(coords: np.ndarray, grid: int) -> np.ndarray:
    """For each cell of a ``grid`` x ``grid`` square (row-major), the index of the nearest point."""
    from scipy.spatial import cKDTree

    centres = (np.arange(grid) + 0.5) / grid
    gx, gy = np.meshgrid(centres, centres)  # row = y, column = x
    cells = np.column_stack([gx.ravel(), gy.ravel()])
    _, nearest = cKDTree(coords).query(cells, k=1)
    return np.asarray(nearest, dtype=np.int64)


def render_grid(
    vmap: VisualMap,
    engine: Engine,
    grid: int,
    cell: int,
    access: ImageAccess,
    progress: Progress | None = None,
) -> Image.Image:
    """A grid of thumbnails, each cell showing the product nearest to it on the map."""
    if not 2 <= grid <= MAX_GRID:
        raise InvalidInput(f"grid must be between 2 and {MAX_GRID}, got {grid}")
    if not 16 <= cell <= 256:
        raise InvalidInput(f"cell must be between 16 and 256 pixels, got {cell}")
    nearest = grid_assignment(vmap.coords, grid)
    shown = sorted({vmap.ids[i] for i in nearest.tolist()})
    progress = progress or Progress()
    progress.stage("thumbnails", len(shown))
    tiles = thumbnails(engine.get(shown), shown, cell, access, progress.advance)
    canvas = Image.new("RGB", (grid * cell, grid * cell), "white")
    for n, idx in enumerate(nearest.tolist()):
        row, col = divmod(n, grid)
        canvas.paste(tiles[vmap.ids[idx]], (col * cell, row * cell))
    return canvas


def save_map(
    engine: Engine,
    out: Path,
    *,
    access: ImageAccess,
    filters: Filter | None = None,
    limit: int | None = 2000,
    grid: int = 20,
    cell: int = 64,
    method: str = "tsne",
    progress: Progress | None = None,
) -> VisualMap:
    """Compute the map and write its thumbnail grid as a PNG."""
    progress = progress or Progress()
    pop = visual_population(engine, filters, limit)
    # one step: t-SNE and UMAP report no progress of their own (the bar shows the time spent)
    progress.stage(f"{method} of {len(pop.ids)} products", 1)
    vmap = map_population(pop, method)
    progress.advance()
    image = render_grid(vmap, engine, grid, cell, access, progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, format="PNG")
    return vmap
