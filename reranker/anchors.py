"""Anchors as the scoring functions need them: their vectors read once per space, and checked
with the very vectors that are then used.

Shared by the Python re-scorer (``reranker.service``) and the engine plan
(``reranker.engine_plan``), so both see the same anchors, weights and query vectors. One
:class:`RequestVectors` per request reads each space once, for the anchors, the negatives and
(when it is known by then) the candidate window together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lookalike.engines import Engine
from lookalike.errors import InvalidInput, NotFound
from reranker.request import Anchor
from reranker.scoring import pad_rows
from reranker.window import AnchorSet

QUERY_ANCHOR = "(query)"  # the name an uploaded image or a visual text query has in explanations


class RequestVectors:
    """One request's vector reads: each space once, anchors, negatives and window together."""

    def __init__(self, engine: Engine, anchors: Sequence[Anchor], negatives: Sequence[Anchor]):
        self.engine = engine
        self.named = list(dict.fromkeys([a.id for a in anchors] + [n.id for n in negatives]))
        self._reads: dict[str, tuple[list[str], np.ndarray]] = {}
        self._found: dict[str, dict[str, np.ndarray]] = {}
        self._checked = False

    def read(self, space: str, window: Sequence[str] = ()) -> None:
        """Read a space for the named products and ``window`` (once; later calls are free)."""
        if space not in self._reads:
            ids = list(dict.fromkeys([*window, *self.named]))
            matrix = self.engine.vector_matrix(ids, space)
            self._reads[space] = (ids, matrix)
            # their rows found once per space, not once per use; they follow the window's
            # ids (unless in it), so a scan from the end finds each in a few steps
            last, backwards = len(ids) - 1, ids[::-1]
            where = {pid: last - backwards.index(pid) for pid in self.named}
            self._found[space] = {
                pid: matrix[where[pid]] for pid in self.named if matrix[where[pid]].any()
            }

    def found(self, space: str) -> dict[str, np.ndarray]:
        """The named products' vectors of a space (those that have one)."""
        self.read(space)
        return self._found[space]

    def window(self, space: str, ids: Sequence[str]) -> np.ndarray:
        """The window's vectors as one matrix (zero rows without one): from the space's read
        when it included them, else one more read (the k-NN window is known only after the
        anchors' image vectors centred it)."""
        self.read(space, ids)
        read_ids, matrix = self._reads[space]
        if read_ids[: len(ids)] == list(ids):
            return matrix[: len(ids)]
        return self.engine.vector_matrix(ids, space)

    def check(self, anchors: Sequence[str], need_image: bool, window: Sequence[str] = ()) -> None:
        """Unknown anchors or negatives are a 404, never an empty answer; anchors without an
        image vector a 422 when the image signal needs them. Decided from the image vectors
        read for scoring; only ids without one cost an existence lookup (no document read)."""
        if not self.named or self._checked:
            return
        self._checked = True
        with_image: set[str] = set()
        if need_image:
            self.read("image", window)
            with_image = set(self.found("image"))
        unsure = [pid for pid in self.named if pid not in with_image]
        existing = set(self.engine.fingerprints(unsure)) if unsure else set()
        missing = [pid for pid in unsure if pid not in existing]
        if missing:
            raise NotFound(f"unknown product id(s): {', '.join(missing)}", ids=missing)
        without = [a for a in anchors if need_image and a not in with_image]
        if without:
            raise InvalidInput(
                f"product(s) {', '.join(without)} have no image vector (no image could be loaded)",
                ids=without,
            )

    def anchor_set(
        self, anchors: Sequence[Anchor], space: str, extra: np.ndarray | None = None
    ) -> AnchorSet:
        """The anchors' product vectors in one space (those that have one), zero-padded."""
        found = self.found(space) if anchors else {}
        query = None if extra is None else self.engine.serving_vector(space, extra)
        names, weights, rows = _kept(anchors, found, query)
        return AnchorSet(names, np.array(weights, np.float64), pad_rows(rows))


def _kept(
    anchors: Sequence[Anchor], found: Mapping[str, np.ndarray], extra: np.ndarray | None
) -> tuple[list[str], list[float], list[np.ndarray]]:
    """Names, weights and vectors of the anchors found, plus the query's own (weight 1)."""
    kept = [a for a in anchors if len(found.get(a.id, ()))]
    names = [a.id for a in kept]
    weights = [a.weight for a in kept]
    rows = [found[a.id] for a in kept]
    if extra is not None:
        names.append(QUERY_ANCHOR)
        weights.append(1.0)
        rows.append(extra)
    return names, weights, rows


def image_sets(
    engine: Engine, anchors: Sequence[Anchor], extra: np.ndarray | None = None
) -> tuple[list[str], list[float], list[np.ndarray]]:
    """Names, weights and per-image matrices of the anchors that have image vectors."""
    found = engine.image_vectors([a.id for a in anchors]) if anchors else {}
    return _kept(anchors, found, extra)
