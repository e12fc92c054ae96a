"""Projections: a stored vector space mapped to a served one by a fitted map.

A projection reads the vectors an engine stores for a *source* space and serves them as its
*space*: the same name when it replaces how the source is served (a PCA: smaller vectors,
the full ones stay stored), or a derived name (a learned head turning ``image`` vectors into
``tuned`` ones). Engines register them with ``Engine.set_projection`` and apply them to
stored rows, new writes and raw query vectors alike, so every query path sees one form.

A projection is fitted on the vectors of one model (``name@version``) and refuses any other
model's vectors: re-indexing with a new model means fitting again. Its tag
(``model+kind<dim>-<hash>``) names the projected vectors unambiguously.

The map is affine (a PCA), or has one ReLU hidden layer before it (a learned head, which a
single matrix cannot express): every engine serves either through :meth:`Projection.apply`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from lookalike.errors import ConfigError, InvalidInput

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")  # a space or kind name (as the engines accept)
P = TypeVar("P", bound="Projection")


class ProjectionMismatch(ConfigError):
    """A projection meets vectors of another model than the one it was fitted on."""


def _check_name(what: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(f"invalid {what} {name!r}: lower-case letters, digits and _")
    return name


@dataclass(frozen=True, eq=False)
class Projection:
    """``apply(x) = unit((x − mean) · weights.T + bias)`` for rows ``x`` of the source model,
    or with a hidden layer ``h = relu((x − mean) · hidden_weights.T + hidden_bias)`` in place of
    ``x − mean`` (then ``weights`` is ``[dim, hidden]``).

    ``kind`` says how it was fitted (``pca``, ``head``, ...); ``info`` keeps a few numbers
    about the fit for reports (explained variance, training loss). The output dimension must
    differ from the input's: engines tell raw query vectors from served ones by length.
    """

    kind: str
    source: str  # the stored space it reads
    space: str  # the space it serves: ``source`` (in place) or a derived name
    model: str  # the model tag of the source vectors it was fitted on
    weights: np.ndarray  # [dim, d], or [dim, hidden] after a hidden layer
    mean: np.ndarray | None = None  # [d], subtracted first
    bias: np.ndarray | None = None  # [dim], added after the product
    info: Mapping[str, Any] = field(default_factory=dict)
    hidden_weights: np.ndarray | None = None  # [hidden, d]: the ReLU layer, when there is one
    hidden_bias: np.ndarray | None = None  # [hidden], only with hidden_weights

    def __post_init__(self) -> None:
        _check_name("projection kind", self.kind)
        _check_name("source space", self.source)
        _check_name("space", self.space)
        w = _matrix("weights", self.weights)
        object.__setattr__(self, "weights", w)
        d = w.shape[1]
        if self.hidden_weights is not None:
            h = _matrix("hidden_weights", self.hidden_weights)
            if h.shape[0] != w.shape[1]:
                raise InvalidInput(
                    f"projection weights read {w.shape[1]} values but the hidden layer"
                    f" gives {h.shape[0]}"
                )
            object.__setattr__(self, "hidden_weights", h)
            d = h.shape[1]
        elif self.hidden_bias is not None:
            raise InvalidInput("a projection hidden_bias needs hidden_weights")
        if w.shape[0] == d:
            raise InvalidInput(
                f"a projection must change the dimension (got {d} -> {w.shape[0]}):"
                " engines tell raw query vectors from projected ones by their length"
            )
        for name, want in (("mean", d), ("bias", w.shape[0]), ("hidden_bias", w.shape[1])):
            value = getattr(self, name)
            if value is None:
                continue
            arr = np.ascontiguousarray(value, dtype=np.float32).ravel()
            if arr.shape != (want,) or not np.all(np.isfinite(arr)):
                raise InvalidInput(f"projection {name} must be {want} finite values")
            object.__setattr__(self, name, arr)

    @property
    def hidden(self) -> int:
        """Width of the ReLU hidden layer (0: the map is affine)."""
        return 0 if self.hidden_weights is None else int(self.hidden_weights.shape[0])

    @property
    def dim(self) -> int:
        """Dimensions of the projected vectors."""
        return int(self.weights.shape[0])

    @property
    def input_dim(self) -> int:
        """Dimensions of the source vectors it reads."""
        first = self.weights if self.hidden_weights is None else self.hidden_weights
        return int(first.shape[1])

    @property
    def in_place(self) -> bool:
        """Whether it replaces how its source is served (else it serves a derived space)."""
        return self.space == self.source

    @property
    def tag(self) -> str:
        """The model tag of projected vectors: the source model, the kind and a hash."""
        arrays = (self.mean, self.weights, self.bias, self.hidden_weights, self.hidden_bias)
        parts = [a.tobytes() for a in arrays if a is not None]
        digest = hashlib.sha256(b"".join(parts)).hexdigest()
        return f"{self.model}+{self.kind}{self.dim}-{digest[:10]}"

    def check_model(self, model: str | None) -> None:
        """Refuse vectors of another model than the one this was fitted on."""
        if model is not None and model != self.model:
            raise ProjectionMismatch(
                f"the {self.kind} projection of {self.space!r} was fitted on {self.model}"
                f" vectors, not {model}: fit it again",
                space=self.space,
                fitted=self.model,
                model=model,
            )

    def apply(self, vectors: np.ndarray, model: str | None = None) -> np.ndarray:
        """Project rows of ``model`` (checked when given) to unit rows of ``dim`` values."""
        self.check_model(model)
        x = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if x.shape[1] != self.input_dim:
            raise InvalidInput(
                f"the projection of {self.space!r} expects {self.input_dim}-d vectors,"
                f" got {x.shape[1]}"
            )
        if self.mean is not None:
            x = x - self.mean
        if self.hidden_weights is not None:
            x = x @ self.hidden_weights.T
            if self.hidden_bias is not None:
                x = x + self.hidden_bias
            x = np.maximum(x, 0.0)
        y = x @ self.weights.T
        if self.bias is not None:
            y = y + self.bias
        norms = np.linalg.norm(y, axis=1, keepdims=True)
        out: np.ndarray = np.divide(y, norms, out=np.zeros_like(y), where=norms > 0)
        return out

    # -- persistence -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (arrays as base64 little-endian float32)."""

        def enc(a: np.ndarray | None) -> str | None:
            return None if a is None else base64.b64encode(a.astype("<f4").tobytes()).decode()

        out: dict[str, Any] = {
            "kind": self.kind,
            "source": self.source,
            "space": self.space,
            "model": self.model,
            "dim": self.dim,
            "input_dim": self.input_dim,
            "weights": enc(self.weights),
            "mean": enc(self.mean),
            "bias": enc(self.bias),
            "info": dict(self.info),
            "tag": self.tag,
        }
        if self.hidden_weights is not None:  # absent from an affine map's JSON, as before
            out["hidden"] = self.hidden
            out["hidden_weights"] = enc(self.hidden_weights)
            out["hidden_bias"] = enc(self.hidden_bias)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls: type[P], data: Mapping[str, Any]) -> P:
        """Read back what ``to_dict`` wrote; any kind loads as its class or as this one."""

        def dec(s: str | None) -> np.ndarray | None:
            return None if s is None else np.frombuffer(base64.b64decode(s), dtype="<f4").copy()

        try:
            weights = dec(data["weights"])
            if weights is None:
                raise ValueError("no weights")
            hidden = int(data.get("hidden") or 0)
            hidden_weights = dec(data.get("hidden_weights")) if hidden else None
            if hidden_weights is not None:
                hidden_weights = hidden_weights.reshape(hidden, int(data["input_dim"]))
            return cls(
                kind=data["kind"],
                source=data["source"],
                space=data["space"],
                model=data["model"],
                weights=weights.reshape(int(data["dim"]), hidden or int(data["input_dim"])),
                mean=dec(data.get("mean")),
                bias=dec(data.get("bias")),
                info=dict(data.get("info") or {}),
                hidden_weights=hidden_weights,
                hidden_bias=dec(data.get("hidden_bias")) if hidden else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"a stored projection cannot be read: {exc!r}") from exc

    @classmethod
    def from_json(cls: type[P], text: str) -> P:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"a stored projection is not JSON: {exc}") from exc
        return cls.from_dict(data)


def _matrix(name: str, value: np.ndarray) -> np.ndarray:
    m = np.ascontiguousarray(value, dtype=np.float32)
    if m.ndim != 2 or 0 in m.shape:
        raise InvalidInput(f"projection {name} must be a 2-d matrix, got {m.shape}")
    if not np.all(np.isfinite(m)):
        raise InvalidInput(f"projection {name} are not finite")
    return m


def check_registrable(
    projection: Projection, active: Mapping[str, str], stored_spaces: set[str]
) -> None:
    """What every engine checks before registering a projection: its source space holds
    vectors of the model it was fitted on, and a derived space does not hide a stored one
    (``active``: the model tag of each stored space)."""
    model = active.get(projection.source)
    if model is None:
        raise InvalidInput(
            f"no vectors in space {projection.source!r} to project", space=projection.source
        )
    projection.check_model(model)
    if not projection.in_place and projection.space in stored_spaces:
        raise InvalidInput(
            f"space {projection.space!r} holds stored vectors: a projection from"
            f" {projection.source!r} cannot replace them",
            space=projection.space,
        )
