"""The one shape of an answer: what :func:`reranker.run` returns, the API sends and the CLI prints.

The API declares these as its ``response_model``, the CLI's ``--json`` prints
:meth:`SearchResult.to_dict` and the web page reads the API's JSON, so a field added here
reaches every surface. ``explanation`` and ``session`` are left out of the JSON when absent
(only ``explain=true`` and ``session_id`` add them).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def _absent(value: object) -> bool:
    return value is None


class Hit(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    score: float
    title: str
    brand: str | None = None
    category: str | None = None
    color: str | None = None
    price: float | None = None
    image: str | None = None
    explanation: dict[str, Any] | None = Field(
        None, exclude_if=_absent, description="Each signal's and anchor's contribution (explain)."
    )


class SessionAnchorUsed(BaseModel):
    id: str
    weight: float
    events: list[dict[str, Any]] = Field(
        description="The events that made this anchor: type, product_id, at."
    )


class SessionUsed(BaseModel):
    """Which of a shopper's events became which anchors (only with ``session_id``)."""

    id: str
    anchors: list[SessionAnchorUsed]
    negatives: list[SessionAnchorUsed]
    excluded: list[str]


class SearchResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    hits: list[Hit]
    total: int = Field(description="Candidates that can be paged through (filters, exclusions).")
    anchors: list[str] = Field(description="The anchors the scores are against, in order.")
    session: SessionUsed | None = Field(None, exclude_if=_absent)

    def with_session(self, used: SessionUsed | None) -> SearchResult:
        """The same answer, saying what the shopper's session added (``None``: nothing)."""
        return self if used is None else self.model_copy(update={"session": used})

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, as the API sends it."""
        return self.model_dump(mode="json")
