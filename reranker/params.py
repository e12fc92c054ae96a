"""The re-ranking parameters every surface offers, declared and validated once.

The API takes them as query parameters (``Annotated[RerankParams, Query()]``: these fields,
with their limits and descriptions, are the OpenAPI parameters); the CLI builds the same
model from its options (:meth:`RerankParams.build`). :meth:`RerankParams.request` turns
either into the :class:`RerankRequest` the service runs, with the limits of the settings.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lookalike.errors import InvalidInput
from lookalike.settings import Settings
from reranker.imagesets import METHODS, SetMethod, SetOptions
from reranker.request import SIGNALS, Anchor, RerankRequest, parse_weighted_ids
from reranker.scoring import AGGREGATIONS, KEYWORD_NORMS, Aggregation, KeywordNorm

IDS_CHARS = 10_000


def _weight(what: str) -> Any:
    return Field(None, ge=0, le=1000, description=what)


class RerankParams(BaseModel):
    """Anchors, negatives, signal weights, aggregation, paging and image-set comparison.

    A signal's weight is the field ``w_<signal>`` (one per :data:`SIGNALS`); unset ones keep
    their defaults.
    """

    model_config = ConfigDict(frozen=True)

    anchor_ids: str = Field(
        "", max_length=IDS_CHARS, description="Anchor ids, comma-separated, ID[:WEIGHT]."
    )
    negative_ids: str = Field(
        "", max_length=IDS_CHARS, description="Ids to look unlike, comma-separated, ID[:WEIGHT]."
    )
    w_visual: float | None = _weight("Weight of image similarity.")
    w_color: float | None = _weight("Weight of colour/style (palette) similarity.")
    w_tuned: float | None = _weight("Weight of the tuned head's image space.")
    w_tuned_color: float | None = _weight("Weight of the tuned head's colour space.")
    w_text: float | None = _weight("Weight of text-embedding similarity.")
    w_attributes: float | None = _weight("Weight of attribute overlap.")
    w_keyword: float | None = _weight("Weight of the normalised BM25.")
    w_negative: float | None = _weight("Strength of the negatives.")
    aggregation: Aggregation = Field(
        "average", description=f"Anchor aggregation: {', '.join(AGGREGATIONS)}."
    )
    keyword_norm: KeywordNorm = Field(
        "minmax", description=f"BM25 normalisation: {', '.join(KEYWORD_NORMS)}."
    )
    window: int | None = Field(None, ge=1, le=10_000, description="Candidates re-scored.")
    explain: bool = Field(False, description="Per-hit signal and anchor contributions.")
    k: int | None = Field(None, ge=1, description="How many results.")
    offset: int = Field(0, ge=0, le=10_000, description="Results to skip.")
    set_method: SetMethod = Field(
        "mean", description=f"Products compared as image sets: {', '.join(METHODS)}."
    )
    set_threshold: float | None = Field(
        None, ge=-1, le=1, description="Image pairs under it do not count."
    )
    set_m: int | None = Field(None, ge=1, le=64, description="Only the best m image pairs count.")

    @classmethod
    def build(
        cls,
        anchors: list[str] | None = None,
        negatives: list[str] | None = None,
        weights: dict[str, float] | None = None,
        **values: Any,
    ) -> RerankParams:
        """The model from a caller's own forms (repeated ``ID[:W]``, a weights dict), with its
        mistakes as :class:`InvalidInput` (the CLI's one error path), not a pydantic error."""
        unknown = sorted(set(weights or {}) - set(SIGNALS))
        if unknown:
            raise InvalidInput(f"unknown signal {unknown[0]!r}; one of {', '.join(SIGNALS)}")
        fields = {f"w_{name}": value for name, value in (weights or {}).items()}
        try:
            return cls(
                anchor_ids=",".join(anchors or []),
                negative_ids=",".join(negatives or []),
                **fields,
                **values,
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{' '.join(str(p) for p in e['loc']).replace('_', ' ')}: {e['msg']}"
                for e in exc.errors()
            )
            raise InvalidInput(problems) from None

    @property
    def anchors(self) -> tuple[Anchor, ...]:
        return parse_weighted_ids([self.anchor_ids])

    @property
    def negatives(self) -> tuple[Anchor, ...]:
        return parse_weighted_ids([self.negative_ids])

    @property
    def weights(self) -> dict[str, float]:
        """The weights given, by signal (the rest keep :data:`DEFAULT_WEIGHTS`)."""
        given = {name: getattr(self, f"w_{name}") for name in SIGNALS}
        return {name: value for name, value in given.items() if value is not None}

    def request(
        self, settings: Settings, *, like: str | None = None, **overrides: Any
    ) -> RerankRequest:
        """The validated request (limits and defaults from the settings).

        ``like``: more like this product: it is the first anchor, before the given ones.
        ``overrides``: what the surface adds (``query``, ``filters``, ``query_vectors``).
        """
        anchors = self.anchors
        if like is not None:
            anchors = (Anchor(like),) + tuple(a for a in anchors if a.id != like)
        values: dict[str, Any] = {
            "anchors": anchors,
            "negatives": self.negatives,
            "weights": {"color": settings.w_color, **self.weights},
            "aggregation": self.aggregation,
            "keyword_norm": self.keyword_norm,
            "window": self.window or settings.candidates,
            "k": self.k or settings.default_k,
            "offset": self.offset,
            "explain": self.explain,
            "max_k": settings.max_k,
            "image_set": SetOptions(self.set_method, self.set_threshold, self.set_m),
        }
        return RerankRequest(**{**values, **overrides})
