"""Anchors as the scoring functions need them: checked, and their vectors fetched per space.

Shared by the Python re-scorer (``reranker.service``) and the engine plan
(``reranker.engine_plan``), so both see the same anchors, weights and query vectors.
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


def check_anchors(engine: Engine, ids: Sequence[str], need_image: bool) -> None:
    """Unknown anchors are an error (404), never an empty answer."""
    known = engine.get(list(ids))
    missing = [a for a in ids if a not in known]
    if missing:
        raise NotFound(f"unknown product id(s): {', '.join(missing)}", ids=missing)
    if need_image:
        with_vec = engine.vectors(list(ids), space="image")
        without = [a for a in ids if a not in with_vec]
        if without:
            raise InvalidInput(
                f"product(s) {', '.join(without)} have no image vector (no image could be loaded)",
                ids=without,
            )


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


def anchor_set(
    engine: Engine, anchors: Sequence[Anchor], space: str, extra: np.ndarray | None = None
) -> AnchorSet:
    """The anchors' product vectors in one space (those that have one), zero-padded."""
    found = engine.vectors([a.id for a in anchors], space=space) if anchors else {}
    query = None if extra is None else engine.serving_vector(space, extra)
    names, weights, rows = _kept(anchors, found, query)
    return AnchorSet(names, np.array(weights, np.float64), pad_rows(rows))


def image_sets(
    engine: Engine, anchors: Sequence[Anchor], extra: np.ndarray | None = None
) -> tuple[list[str], list[float], list[np.ndarray]]:
    """Names, weights and per-image matrices of the anchors that have image vectors."""
    found = engine.image_vectors([a.id for a in anchors]) if anchors else {}
    return _kept(anchors, found, extra)
