"""Optional PCA for smaller vectors: fitted on the catalogue's vectors, stored with the model.

A fitted projection is tied to the model tag of the space it was fitted on (``name@version``):
vectors of another model can never be projected with it. Its own version is a hash of the
fitted numbers, so ``model@version+pca<dim>-<hash>`` names the reduced vectors unambiguously
(the tag to store them under when a space is re-indexed reduced).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lookalike.errors import ConfigError, InvalidInput

if TYPE_CHECKING:
    from lookalike.engines import Engine

META_PREFIX = "pca:"
TAG_PREFIX = "pca-tag:"  # the small key readers poll: the stored projection's tag


@dataclass(frozen=True)
class Pca:
    """``reduce(x) = unit((x − mean) · components.T)``: centred, projected, re-normalised."""

    model: str  # the tag of the model whose vectors it was fitted on
    mean: np.ndarray  # [d]
    components: np.ndarray  # [dim, d], orthonormal rows, by explained variance
    explained: float  # share of the variance the kept components explain

    @property
    def dim(self) -> int:
        return int(self.components.shape[0])

    @property
    def tag(self) -> str:
        """The model tag of reduced vectors: the source model plus this projection's hash."""
        digest = hashlib.sha256(self.mean.tobytes() + self.components.tobytes()).hexdigest()
        return f"{self.model}+pca{self.dim}-{digest[:10]}"

    def reduce(self, vectors: np.ndarray, model: str | None = None) -> np.ndarray:
        """Project unit vectors of ``model`` (checked when given) to ``dim`` unit vectors."""
        if model is not None and model != self.model:
            raise InvalidInput(f"PCA fitted on {self.model} cannot reduce {model} vectors")
        x = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if x.shape[1] != self.mean.shape[0]:
            raise InvalidInput(f"PCA expects {self.mean.shape[0]}-d vectors, got {x.shape[1]}")
        y = (x - self.mean) @ self.components.T
        norms = np.linalg.norm(y, axis=1, keepdims=True)
        out: np.ndarray = np.divide(y, norms, out=np.zeros_like(y), where=norms > 0)
        return out

    def to_json(self) -> str:
        def enc(a: np.ndarray) -> str:
            return base64.b64encode(np.ascontiguousarray(a, np.float32).tobytes()).decode()

        return json.dumps(
            {
                "model": self.model,
                "dim": self.dim,
                "explained": self.explained,
                "mean": enc(self.mean),
                "components": enc(self.components),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Pca:
        d = json.loads(text)

        def dec(s: str) -> np.ndarray:
            return np.frombuffer(base64.b64decode(s), dtype=np.float32).copy()

        mean = dec(d["mean"])
        return cls(d["model"], mean, dec(d["components"]).reshape(d["dim"], -1), d["explained"])


def fit(vectors: np.ndarray, dim: int, model: str) -> Pca:
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
    return Pca(model, mean.astype(np.float32), vectors_[:, :dim].T.astype(np.float32), explained)


def fit_engine(engine: Engine, space: str, dim: int, sample: int = 50_000, seed: int = 0) -> Pca:
    """Fit on up to ``sample`` random products' vectors of ``space`` and store it in the engine."""
    ids = engine.all_ids()
    rng = np.random.default_rng(seed)
    if len(ids) > sample:
        ids = [ids[i] for i in sorted(rng.choice(len(ids), sample, replace=False))]
    found = engine.vectors(ids, space)
    if not found:
        raise InvalidInput(f"no vectors in space {space!r} to fit a PCA on")
    model = engine.get([next(iter(found))])[next(iter(found))].models.get(space, "unknown")
    pca = fit(np.stack(list(found.values())), dim, model)
    engine.set_meta(META_PREFIX + space, pca.to_json())
    engine.set_meta(TAG_PREFIX + space, pca.tag)  # after the projection: readers poll this
    return pca


def load(engine: Engine, space: str, model: str | None = None) -> Pca | None:
    """The stored projection of a space; an error if it was fitted on another model."""
    text = engine.get_meta(META_PREFIX + space)
    if text is None:
        return None
    pca = Pca.from_json(text)
    if model is not None and pca.model != model:
        raise ConfigError(
            f"the stored PCA of {space!r} was fitted on {pca.model}, the vectors are {model}: "
            "fit it again",
            space=space,
        )
    return pca
