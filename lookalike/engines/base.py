"""The engine contract every backend implements (embedded, OpenSearch).

Everything above the engine (indexer, reranker, API, CLI) talks to this class only, and
one contract test suite runs against every backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lookalike.documents import Candidate, Document, Product
from lookalike.engines.plan import RescorePlan
from lookalike.errors import ConfigError
from lookalike.filters import Filter
from lookalike.projections import Projection

Provenance = dict[str, dict[str, Any]]  # by field: value, source, confidence, neighbours, time


@dataclass(frozen=True)
class UpsertResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


class Engine(ABC):
    """Stores product documents and answers keyword, filter and vector queries."""

    name: str = "base"
    rescores: bool = False  # answers ``rescored_search`` itself (else the reranker re-scores)

    # -- writes ---------------------------------------------------------------------------
    @abstractmethod
    def upsert(self, docs: Sequence[Document]) -> UpsertResult:
        """Insert or replace documents by id, all-or-nothing for the batch.

        A document whose fingerprint equals the stored one is left untouched (its revision
        does not change), so re-indexing the same catalogue changes nothing.
        """

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> int:
        """Delete products by id; returns how many existed."""

    # -- reads ----------------------------------------------------------------------------
    @abstractmethod
    def get(self, ids: Sequence[str]) -> dict[str, Product]:
        """Stored products by id; unknown ids are absent from the answer."""

    @abstractmethod
    def fingerprints(self, ids: Sequence[str]) -> dict[str, str]:
        """Stored fingerprints by id (to skip unchanged records before any work)."""

    @abstractmethod
    def cached_image_vectors(self, hashes: Sequence[str], model: str) -> dict[str, np.ndarray]:
        """Vectors already computed by ``model`` (``name@version``) for these image hashes."""

    @abstractmethod
    def vectors(self, ids: Sequence[str], space: str = "image") -> dict[str, np.ndarray]:
        """Product-level vectors of a space by id; products without one are absent."""

    def vector_matrix(self, ids: Sequence[str], space: str = "image") -> np.ndarray:
        """The vectors of ``ids`` as one float32 matrix in that order (re-scoring a window);
        a product without a vector gets a zero row, shorter vectors are zero-padded."""
        found = self.vectors(ids, space)
        width = max((len(v) for v in found.values()), default=0)
        out = np.zeros((len(ids), width), dtype=np.float32)
        for n, pid in enumerate(ids):
            vec = found.get(pid)
            if vec is not None:
                out[n, : len(vec)] = vec
        return out

    def serving_vector(self, space: str, vector: np.ndarray) -> np.ndarray:
        """A raw model vector (e.g. an uploaded image's) in the form ``vectors()`` returns for
        the space: the same vector unless a projection serves the space (see below)."""
        return vector

    def stored_vectors(self, ids: Sequence[str], space: str, model: str) -> dict[str, np.ndarray]:
        """Product vectors of a space exactly as upserted under ``model`` (before any
        projection): what a rewritten document must carry; none for a derived space."""
        return self.vectors(ids, space)

    @abstractmethod
    def space_models(self) -> dict[str, str]:
        """The model tag of each stored vector space (the newest written): what a projection
        fitted now is tied to."""

    # -- projections --------------------------------------------------------------------------
    # A projection (lookalike.projections) maps a stored source space to a served one: in place
    # (a PCA: ``vectors``/``knn`` of the space answer with reduced vectors, ``stored_vectors``
    # keeps the full ones) or a derived space (``vectors(ids, "tuned")``). The engine applies
    # it to stored rows, to later writes and to raw query vectors of the source's length.
    def set_projection(self, projection: Projection) -> None:
        """Serve ``projection.space`` through ``projection`` from now on (replacing one there);
        refused when the source space holds another model's vectors."""
        raise ConfigError(f"the {self.name} engine cannot serve projections", engine=self.name)

    def projection(self, space: str) -> Projection | None:
        """The projection serving ``space``, if any (whatever model it was fitted on)."""
        return None

    def projections(self) -> dict[str, Projection]:
        """Every registered projection by the space it serves."""
        return {}

    def drop_projection(self, space: str) -> bool:
        """Stop projecting ``space`` (an in-place space is served full again, a derived one
        disappears); False when none was registered."""
        raise ConfigError(f"the {self.name} engine cannot serve projections", engine=self.name)

    @abstractmethod
    def image_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Per-image vectors ``[m, dim]`` by product id (products compared as image sets)."""

    @abstractmethod
    def keyword_search(
        self, query: str | None, filters: Filter | None = None, limit: int = 1000
    ) -> list[Candidate]:
        """BM25 top-``limit`` over title, description, brand, category, colour, attributes.

        Any user text is safe (it is never parsed as query syntax). With no query, returns
        up to ``limit`` products matching the filters, score 0, in a stable order.
        """

    @abstractmethod
    def knn(
        self,
        vector: np.ndarray,
        k: int,
        filters: Filter | None = None,
        exclude: Sequence[str] = (),
        space: str = "image",
    ) -> list[Candidate]:
        """Top-``k`` products by cosine similarity within the filters, minus ``exclude``."""

    def rescored_search(self, plan: RescorePlan, k: int) -> tuple[list[Candidate], int] | None:
        """The top ``k`` of the plan's window re-scored inside the engine, with the window's
        size; ``None`` (the default) means "re-score in Python through this contract"."""
        return None

    @abstractmethod
    def count(self, filters: Filter | None = None) -> int:
        """How many products match (all when no filter)."""

    @abstractmethod
    def all_ids(self) -> list[str]:
        """Every stored product id, sorted."""

    # -- metadata and lifecycle -------------------------------------------------------------
    @abstractmethod
    def get_meta(self, key: str) -> str | None:
        """Read a small persisted setting (e.g. the attribute vocabulary as JSON)."""

    @abstractmethod
    def set_meta(self, key: str, value: str) -> None:
        """Persist a small setting."""

    # -- provenance of inferred values (gap filling) --------------------------------------------
    @abstractmethod
    def record_provenance(self, entries: Mapping[str, Provenance]) -> None:
        """Store where inferred values came from, by product id and field: each given
        field's entry replaces that field's, other fields are kept. One write for the batch."""

    @abstractmethod
    def provenance(self, ids: Sequence[str]) -> dict[str, Provenance]:
        """Stored provenance by product id (ids without any are absent), by field."""

    @abstractmethod
    def delete_provenance(self, ids: Sequence[str], fields: Sequence[str] | None = None) -> int:
        """Forget the provenance of these products (only ``fields`` when given); returns how
        many products had some. Deleting a product forgets its provenance too."""

    @property
    def location(self) -> str:
        """Where this engine reads and writes (a folder, an index): for reports."""
        return self.name

    def begin_rebuild(self, models: dict[str, str]) -> Engine:
        """Blue/green, step one: a new, empty target beside this one, written while this one
        keeps serving (``models``: the tags the new target's vectors will carry)."""
        raise ConfigError(f"the {self.name} engine cannot rebuild blue/green", engine=self.name)

    def promote(self, green: Engine, keep_old: bool = False) -> list[str]:
        """Blue/green, step two: readers of this engine's name switch to ``green`` in one
        atomic step; returns the targets served before (dropped unless ``keep_old``)."""
        raise ConfigError(f"the {self.name} engine cannot rebuild blue/green", engine=self.name)

    def refresh(self) -> None:  # noqa: B027 - optional hook
        """Bring derived indexes up to date with the source of truth (no-op by default)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and connections."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
