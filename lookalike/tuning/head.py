"""The tuned head: one two-layer tower per stored space, each served as a Projection.

A tower is two linear layers with a ReLU between them (``in -> hidden -> out``), served as a
:class:`~lookalike.projections.Projection` with a hidden layer: ``image -> tuned`` and
``color -> tuned_color``, applied to stored vectors, later writes and raw query vectors alike.
The ReLU is what lets one head agree on kind and on colour at once (a linear head trades one
for the other, BENCHMARKS.md); ``linear=True`` drops it, and the two layers collapse into one
affine map (``W = W2 W1``).

The head's vector is ``[√m_1 t_1, √m_2 t_2] / √Σm`` for unit tower outputs ``t_i`` and mix
weights ``m_i``: a unit vector whose cosine to another is ``Σ m_i cos(t_i, t_i') / Σm``, which
is exactly what the re-ranker computes from the two served spaces with signal weights in the
ratio of ``m``. Training pulls every product towards a learned proxy of each of its labels
(normalised softmax, ``scale`` the inverse temperature), one classifier per label, so the
cosine of two tuned vectors grows with the labels they share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from lookalike.projections import Projection

KIND = "head"
SERVED = {"image": "tuned", "color": "tuned_color"}  # source space -> the space it serves


class Tower(nn.Module):
    """``x -> W2 relu(W1 (x - mean) + b1) + b2``, unit length (no ReLU when ``linear``)."""

    def __init__(self, mean: np.ndarray, hidden: int, out: int, linear: bool = False) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.first = nn.Linear(len(mean), hidden)
        self.second = nn.Linear(hidden, out)
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean: torch.Tensor = self.mean  # type: ignore[assignment]
        h = self.first(x - mean)
        return nn.functional.normalize(self.second(h if self.linear else torch.relu(h)), dim=1)

    def projection(self, source: str, model: str, info: Mapping[str, Any]) -> Projection:
        """The tower as the projection serving ``SERVED[source]``: both layers with the ReLU,
        or, when linear, one map ``W = W2 W1``, ``b = W2 b1 + b2`` (float64 product)."""
        mean: torch.Tensor = self.mean  # type: ignore[assignment]
        if not self.linear:
            return Projection(
                kind=KIND,
                source=source,
                space=SERVED[source],
                model=model,
                weights=self.second.weight.detach().numpy().copy(),
                bias=self.second.bias.detach().numpy().copy(),
                mean=mean.detach().numpy().copy(),
                hidden_weights=self.first.weight.detach().numpy().copy(),
                hidden_bias=self.first.bias.detach().numpy().copy(),
                info=dict(info),
            )
        w1 = self.first.weight.detach().double()
        w2 = self.second.weight.detach().double()
        b = w2 @ self.first.bias.detach().double() + self.second.bias.detach().double()
        return Projection(
            kind=KIND,
            source=source,
            space=SERVED[source],
            model=model,
            weights=(w2 @ w1).numpy().astype(np.float32),
            mean=mean.detach().numpy().copy(),
            bias=b.numpy().astype(np.float32),
            info=dict(info),
        )


class Head(nn.Module):
    """Towers over several spaces, mixed into one unit vector, and cosine label classifiers."""

    towers: nn.ModuleList

    def __init__(
        self,
        means: Sequence[np.ndarray],
        mix: Sequence[float],
        hidden: int,
        out: Sequence[int],
        classes: Sequence[int],
        scale: float,
        linear: bool = False,
    ) -> None:
        super().__init__()
        self.towers = nn.ModuleList(
            [Tower(m, hidden, d, linear) for m, d in zip(means, out, strict=True)]
        )
        total = float(sum(mix))
        self.register_buffer("root_mix", torch.tensor([(m / total) ** 0.5 for m in mix]))
        width = sum(out)
        self.proxies = nn.ParameterList(
            [nn.Parameter(torch.randn(n, width) / width**0.5) for n in classes]
        )
        self.scale = scale

    def forward(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        root: torch.Tensor = self.root_mix  # type: ignore[assignment]
        parts = [
            root[i] * tower(x) for i, (tower, x) in enumerate(zip(self.towers, xs, strict=True))
        ]
        return torch.cat(parts, dim=1)

    def logits(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Scaled cosines of the head's vectors to every label's class proxies."""
        return [self.scale * z @ nn.functional.normalize(p, dim=1).T for p in self.proxies]
