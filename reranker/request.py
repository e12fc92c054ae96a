"""One validated query model, shared by the HTTP API and the CLI (validated once, here)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from lookalike.errors import InvalidInput
from lookalike.filters import Filter
from lookalike.vectors import unit_mean
from reranker.imagesets import MAX_SET_IMAGES, SetOptions
from reranker.scoring import AGGREGATIONS, KEYWORD_NORMS

MAX_ANCHORS = 20  # anchors + negatives together
SIGNALS = (
    "visual",
    "color",
    "tuned",
    "tuned_color",
    "text",
    "attributes",
    "keyword",
    "negative",
)
SPACES = {
    "visual": "image",
    "color": "color",
    "tuned": "tuned",  # served by `lookalike tune`'s head from the image vectors
    "tuned_color": "tuned_color",  # ... and from the colour vectors
    "text": "text",
    "attributes": "attributes",
}

# Defaults: looks first; the palette (``color``: the images' background-free HSV histogram)
# adds what an ImageNet model barely sees, at 0.15 (the best category+colour P@10 of
# `lookalike eval --holdout`, BENCHMARKS.md); product text and attributes (category, colour,
# ...) refine; the keyword score only breaks near-ties inside the window; negatives pull down
# at half strength.
DEFAULT_WEIGHTS: dict[str, float] = {
    "visual": 1.0,
    "color": 0.15,
    "tuned": 0.0,  # off until asked for: `lookalike tune` prints the weights it was trained for
    "tuned_color": 0.0,
    "text": 0.3,
    "attributes": 0.3,
    "keyword": 0.1,
    "negative": 0.5,
}


@dataclass(frozen=True)
class Anchor:
    id: str
    weight: float = 1.0


def parse_weighted_ids(values: Iterable[str]) -> tuple[Anchor, ...]:
    """``["a:2,b", "c"]`` -> anchors a (weight 2), b, c (weight 1); a later duplicate is dropped.

    Only a numeric tail after the last ``:`` is a weight, so ids containing ``:`` still work.
    """
    out: dict[str, Anchor] = {}
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            pid, weight = part, 1.0
            head, sep, tail = part.rpartition(":")
            if sep and head:
                try:
                    pid, weight = head, float(tail)
                except ValueError:
                    pid, weight = part, 1.0
            if not math.isfinite(weight) or weight <= 0:
                raise InvalidInput(f"anchor weight must be a positive number: {part!r}", id=pid)
            out.setdefault(pid, Anchor(pid, weight))
    return tuple(out.values())


def parse_weights(values: Iterable[str]) -> dict[str, float]:
    """``["visual=0.7", "keyword=0.2"]`` -> ``{"visual": 0.7, "keyword": 0.2}`` (CLI form)."""
    out: dict[str, float] = {}
    for value in values:
        name, sep, raw = value.partition("=")
        name = name.strip()
        if not sep or name not in SIGNALS:
            raise InvalidInput(f"weight must be SIGNAL=NUMBER, SIGNAL one of {', '.join(SIGNALS)}")
        try:
            out[name] = float(raw)
        except ValueError:
            raise InvalidInput(f"weight of {name} is not a number: {raw!r}") from None
    return out


@dataclass
class RerankRequest:
    """Everything one search asks for. ``weights`` overrides :data:`DEFAULT_WEIGHTS` per signal.

    ``query_vectors`` are extra anchors given as vectors rather than products (an uploaded
    image, or a text in a joint text-image space), by space, each with weight 1. An ``image``
    entry may be a matrix ``[m, dim]`` (several uploaded images, one product): it is kept in
    ``query_image_set`` and replaced by its unit mean. ``image_set`` says how products are
    compared as image sets in the visual signal (``mean``: one vector per product).
    """

    query: str | None = None
    anchors: tuple[Anchor, ...] = ()
    negatives: tuple[Anchor, ...] = ()
    filters: Filter | None = None
    weights: dict[str, float] = field(default_factory=dict)
    aggregation: str = "average"
    keyword_norm: str = "minmax"
    window: int = 1000
    k: int = 10
    offset: int = 0
    explain: bool = False
    query_vectors: dict[str, np.ndarray] = field(default_factory=dict)
    max_k: int = 10_000
    image_set: SetOptions = field(default_factory=SetOptions)
    query_image_set: np.ndarray | None = None
    exclude: tuple[str, ...] = ()  # never in the results (e.g. what the shopper already has)

    def __post_init__(self) -> None:
        self.query = (self.query or "").strip() or None
        self._split_query_set()
        if self.aggregation not in AGGREGATIONS:
            raise InvalidInput(
                f"aggregation must be one of {', '.join(AGGREGATIONS)}", got=self.aggregation
            )
        if self.keyword_norm not in KEYWORD_NORMS:
            raise InvalidInput(
                f"keyword_norm must be one of {', '.join(KEYWORD_NORMS)}", got=self.keyword_norm
            )
        if len(self.anchors) + len(self.negatives) > MAX_ANCHORS:
            raise InvalidInput(
                f"at most {MAX_ANCHORS} anchors and negatives together",
                count=len(self.anchors) + len(self.negatives),
            )
        both = {a.id for a in self.anchors} & {n.id for n in self.negatives}
        if both:
            raise InvalidInput("a product cannot be both anchor and negative", ids=sorted(both))
        for name, value in self.weights.items():
            if name not in SIGNALS:
                raise InvalidInput(f"unknown signal {name!r}; one of {', '.join(SIGNALS)}")
            if not math.isfinite(value) or value < 0:
                raise InvalidInput(f"weight of {name} must be a number >= 0", weight=value)
        if not 1 <= self.k <= self.max_k:
            raise InvalidInput(f"k must be between 1 and {self.max_k}", k=self.k)
        if self.offset < 0 or self.window < 1:
            raise InvalidInput("offset must be >= 0 and window >= 1")

    def _split_query_set(self) -> None:
        image = self.query_vectors.get("image")
        if image is None or np.ndim(image) == 1:
            return
        rows = np.asarray(image, dtype=np.float32)
        if rows.ndim != 2 or not 1 <= len(rows) <= MAX_SET_IMAGES:
            raise InvalidInput(f"a query image set holds 1 to {MAX_SET_IMAGES} images")
        self.query_image_set = rows
        self.query_vectors = {**self.query_vectors, "image": unit_mean(rows)}

    @property
    def effective_weights(self) -> dict[str, float]:
        return {**DEFAULT_WEIGHTS, **self.weights}

    @property
    def excluded(self) -> set[str]:
        """Anchors, negatives and ``exclude`` never appear in the results."""
        return {a.id for a in self.anchors} | {n.id for n in self.negatives} | set(self.exclude)

    @property
    def has_anchors(self) -> bool:
        return bool(self.anchors or self.query_vectors)

    def anchor_ids(self) -> list[str]:
        return [a.id for a in self.anchors]
