"""Optional PCA for smaller vectors: the first kind of :mod:`lookalike.projections`.

Fitted on the catalogue's vectors of one space and served in place of them (the engine keeps
the full vectors stored and serves the reduced ones). Tied to the model tag of the space it
was fitted on (``name@version``); its tag ``model@version+pca<dim>-<hash>`` names the reduced
vectors unambiguously.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lookalike.errors import InvalidInput
from lookalike.projections import Projection

if TYPE_CHECKING:
    from lookalike.engines import Engine

KIND = "pca"


class Pca(Projection):
    """``reduce(x) = unit((x − mean) · components.T)``: centred, projected, re-normalised."""

    @property
    def components(self) -> np.ndarray:
        """``[dim, d]`` orthonormal rows, by explained variance."""
        return self.weights

    @property
    def explained(self) -> float:
        """Share of the variance the kept components explain."""
        return float(self.info.get("explained", 0.0))

    def reduce(self, vectors: np.ndarray, model: str | None = None) -> np.ndarray:
        """Project unit vectors of ``model`` (checked when given) to ``dim`` unit vectors;
        another model's vectors are a bad input here (an engine meeting them is misconfigured)."""
        if model is not None and model != self.model:
            raise InvalidInput(f"PCA fitted on {self.model} cannot reduce {model} vectors")
        return self.apply(vectors, model)


def fit(vectors: np.ndarray, dim: int, model: str, space: str = "image") -> Pca:
    """Fit on a sample of the catalogue's vectors (rows); ``dim`` < the vectors' dimension."""
    x = np.asarray(vectors, dtype=np.float64)
    if not 1 <= dim < x.shape[1] or x.shape[0] <= dim:
        raise InvalidInput(f"PCA needs 1 <= dim < {x.shape[1]} and more rows than dim", dim=dim)
    mean = x.mean(axis=0)
    # eigen-decomposition of the d x d covariance: cheaper than an SVD of the data when n >> d
    cov = np.cov(x - mean, rowvar=False)
    values, vectors_ = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors_ = values[order], vectors_[:, order]
    explained = float(values[:dim].sum() / values.sum()) if values.sum() > 0 else 0.0
    return Pca(
        kind=KIND,
        source=space,
        space=space,
        model=model,
        weights=vectors_[:, :dim].T.astype(np.float32),
        mean=mean.astype(np.float32),
        info={"explained": explained, "rows": int(x.shape[0])},
    )


def fit_engine(engine: Engine, space: str, dim: int, sample: int = 50_000, seed: int = 0) -> Pca:
    """Fit on up to ``sample`` random products' stored vectors of ``space`` and register it
    with the engine (``Engine.set_projection``), which then serves the space reduced."""
    model = engine.space_models().get(space)
    if model is None:
        raise InvalidInput(f"no vectors in space {space!r} to fit a PCA on", space=space)
    ids = engine.all_ids()
    rng = np.random.default_rng(seed)
    if len(ids) > sample:
        ids = [ids[i] for i in sorted(rng.choice(len(ids), sample, replace=False))]
    found = engine.stored_vectors(ids, space, model)
    if not found:
        raise InvalidInput(f"no vectors in space {space!r} to fit a PCA on", space=space)
    pca = fit(np.stack(list(found.values())), dim, model, space)
    engine.set_projection(pca)
    return pca


def load(engine: Engine, space: str, model: str | None = None) -> Pca | None:
    """The PCA served for a space; an error if it was fitted on another model than ``model``."""
    stored = engine.projection(space)
    if stored is None or stored.kind != KIND:
        return None
    stored.check_model(model)
    return Pca.from_dict(stored.to_dict())
