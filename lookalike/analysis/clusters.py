"""k-means over the visual vectors: clusters, their representatives, the elbow curve, exports.

Vectors are unit length, so squared Euclidean distance is ``2 - 2·cosine``: k-means groups
products that look alike. Results are reproducible (fixed ``random_state`` and ``n_init``);
large selections use MiniBatchKMeans.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.analysis.population import Population, visual_population
from lookalike.engines import Engine
from lookalike.errors import InvalidInput
from lookalike.filters import Filter
from lookalike.progress import Progress

SEED = 0
N_INIT = 4
MINIBATCH_ABOVE = 5_000  # products; MiniBatchKMeans beyond this
MAX_K = 500


@dataclass(frozen=True)
class Cluster:
    """One cluster: its members sorted by distance to the centre, the closest first."""

    cluster: int
    members: list[str]
    distances: list[float]  # squared distance of each member to the centre

    @property
    def representative(self) -> str:
        return self.members[0]

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class Clustering:
    k: int
    inertia: float
    clusters: list[Cluster]


def _kmeans(k: int, n: int) -> Any:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if n > MINIBATCH_ABOVE:
        return MiniBatchKMeans(
            n_clusters=k, n_init=N_INIT, random_state=SEED, batch_size=2048, max_iter=100
        )
    return KMeans(n_clusters=k, n_init=N_INIT, random_state=SEED)


def check_k(k: int, n: int) -> None:
    if k < 2:
        raise InvalidInput(f"k must be at least 2, got {k}")
    if k > min(n, MAX_K):
        raise InvalidInput(
            f"k={k} is more than the {n} products with a visual vector"
            if k > n
            else f"k must be at most {MAX_K}, got {k}",
            products=n,
        )


def cluster_population(pop: Population, k: int) -> Clustering:
    """k-means on the population's vectors; clusters numbered by size, largest first."""
    check_k(k, len(pop.ids))
    model = _kmeans(k, len(pop.ids)).fit(pop.matrix)
    labels = np.asarray(model.labels_)
    centres = np.asarray(model.cluster_centers_, dtype=np.float32)
    dist = ((pop.matrix - centres[labels]) ** 2).sum(axis=1)
    groups = []
    for label in range(k):
        rows = np.flatnonzero(labels == label)
        if rows.size == 0:
            continue
        order = rows[np.lexsort((np.array([pop.ids[r] for r in rows]), dist[rows]))]
        groups.append(([pop.ids[r] for r in order], [float(dist[r]) for r in order]))
    groups.sort(key=lambda g: (-len(g[0]), g[0][0]))
    clusters = [Cluster(n, members, d) for n, (members, d) in enumerate(groups)]
    return Clustering(k=k, inertia=float(dist.sum()), clusters=clusters)


def cluster_products(
    engine: Engine, k: int, filters: Filter | None = None, limit: int | None = None
) -> Clustering:
    """Cluster the catalogue (or the products matching ``filters``) into ``k`` visual groups."""
    return cluster_population(visual_population(engine, filters, limit), k)


def inertia_curve(
    pop: Population, ks: range, progress: Progress | None = None
) -> list[tuple[int, float]]:
    """(k, inertia) for each k the population allows: the data of an elbow plot."""
    usable = [k for k in ks if 2 <= k <= min(len(pop.ids), MAX_K)]
    if not usable:
        raise InvalidInput(f"no k in {ks.start}:{ks.stop - 1} fits {len(pop.ids)} products")
    progress = progress or Progress()
    progress.stage("k-means per k", len(usable))
    curve = []
    for k in usable:
        curve.append((k, float(_kmeans(k, len(pop.ids)).fit(pop.matrix).inertia_)))
        progress.advance()
    return curve


def parse_k_range(text: str) -> range:
    """``"2:20"`` -> range(2, 21) (both ends included)."""
    try:
        low, high = (int(part) for part in text.split(":"))
    except ValueError:
        raise InvalidInput(f"k range must look like 2:20, got {text!r}") from None
    if low < 2 or high < low:
        raise InvalidInput(f"k range must be LOW:HIGH with 2 <= LOW <= HIGH, got {text!r}")
    return range(low, high + 1)


def save_elbow(curve: list[tuple[int, float]], path: Path) -> Path:
    """The inertia curve as a PNG line plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    try:
        ks, inertia = zip(*curve, strict=True)
        ax.plot(ks, inertia, marker="o", color="#1f77b4")
        ax.set_xlabel("k (clusters)")
        ax.set_ylabel("inertia (sum of squared distances)")
        ax.set_title("Elbow: visual k-means")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def clustering_dict(result: Clustering, engine: Engine) -> dict[str, Any]:
    """The API answer: every cluster with its size, representative (title, image) and members."""
    reps = engine.get([c.representative for c in result.clusters])
    out = []
    for c in result.clusters:
        product = reps.get(c.representative)
        image = None
        if product is not None:
            image = next(
                (i.uri for i in sorted(product.images, key=lambda i: i.position) if not i.error),
                None,
            )
        out.append(
            {
                "cluster": c.cluster,
                "size": c.size,
                "representative": {
                    "id": c.representative,
                    "title": product.title if product else None,
                    "image": image,
                },
                "members": list(c.members),
            }
        )
    return {"k": result.k, "inertia": result.inertia, "clusters": out}


def export_clusters(result: Clustering, engine: Engine, folder: Path) -> list[Path]:
    """``clusters.json`` (the API answer) and ``clusters.csv`` (one row per member)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = clustering_dict(result, engine)
    json_path = folder / "clusters.json"
    json_path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    products = engine.get([pid for c in result.clusters for pid in c.members])
    csv_path = folder / "clusters.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["cluster", "id", "representative", "distance", "title", "category", "color"]
        )
        for c in result.clusters:
            for pid, d in zip(c.members, c.distances, strict=True):
                p = products.get(pid)
                writer.writerow(
                    [
                        c.cluster,
                        pid,
                        int(pid == c.representative),
                        f"{d:.6f}",
                        p.title if p else "",
                        (p.category or "") if p else "",
                        (p.color or "") if p else "",
                    ]
                )
    return [json_path, csv_path]


def select_members(
    ids: Sequence[str] | None, cluster: int | None, clustering: Callable[[], Clustering]
) -> list[str]:
    """The products an assignment names: ``ids``, or the members of cluster number ``cluster``
    of ``clustering()`` (computed only then, with the k and filters the numbers came from)."""
    if ids:
        return list(ids)
    if cluster is None:
        raise InvalidInput("give ids, or a cluster number (with the k and filters it came from)")
    result = clustering()
    if not 0 <= cluster < len(result.clusters):
        raise InvalidInput(f"cluster must be 0-{len(result.clusters) - 1}, got {cluster}")
    return result.clusters[cluster].members


def assign_cluster(engine: Engine, ids: list[str], field: str, value: str) -> int:
    """Give every member of a cluster the same field value (marked inferred, source "cluster")."""
    from lookalike.analysis.writeback import write_values

    return write_values(engine, ids, field, value, source="cluster")
