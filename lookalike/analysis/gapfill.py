"""Attribute gap filling: values proposed from visual neighbours, accepted or rejected.

For a product missing a field (brand, category, color or an attribute key), its ``k`` most
similar products *that have the field* vote: each neighbour adds its cosine similarity
(negative similarities count 0) to its value (an attribute's first value). The proposal is
the heaviest value; its confidence is that value's share of the whole vote, in [0, 1]. The
neighbours are the provenance. Values inferred earlier never vote (errors do not spread).

Neighbours are found in the best space the engine serves: the tuned head's (``lookalike
tune``, trained on the catalogue's own labels) when there is one, else the image model's.

Rejected values are remembered (metadata key ``gapfill:rejected``) and not proposed again
for that product; the next heaviest value is proposed instead. Accepting writes the value
back through :func:`lookalike.analysis.writeback.write_values`, marked as inferred.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import numpy as np

from lookalike.analysis.population import select_ids
from lookalike.analysis.writeback import (
    INFERRED_KEY,
    check_field,
    check_value,
    field_values,
    write_values,
)
from lookalike.documents import Product
from lookalike.engines import Engine
from lookalike.errors import InvalidInput, NotFound
from lookalike.filters import Filter
from lookalike.progress import Progress
from lookalike.tuning.serving import has_head, head_matrix
from lookalike.vectors import unit_rows

REJECTED_KEY = "gapfill:rejected"
DEFAULT_K = 10
_GET_CHUNK = 2_000
_SIM_CHUNK = 1_024


@dataclass(frozen=True)
class Neighbour:
    id: str
    similarity: float
    value: str


@dataclass(frozen=True)
class Proposal:
    id: str
    field: str
    value: str
    confidence: float
    neighbours: list[Neighbour] = dc_field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "value": self.value,
            "confidence": self.confidence,
            "neighbours": [
                {"id": n.id, "similarity": n.similarity, "value": n.value} for n in self.neighbours
            ],
        }


def vote(neighbours: Sequence[Neighbour], skip: Sequence[str] = ()) -> tuple[str, float] | None:
    """The similarity-weighted winner and its share of the vote (None when nobody votes).

    Values in ``skip`` (rejected ones) cannot win but still count in the total.
    """
    weights: dict[str, float] = {}
    for n in neighbours:
        weights[n.value] = weights.get(n.value, 0.0) + max(n.similarity, 0.0)
    total = sum(weights.values())
    ranked = sorted(
        ((w, v) for v, w in weights.items() if v not in skip), key=lambda t: (-t[0], t[1])
    )
    if total <= 0 or not ranked or ranked[0][0] <= 0:
        return None
    weight, value = ranked[0]
    return value, weight / total


def _products(engine: Engine, ids: Sequence[str]) -> dict[str, Product]:
    out: dict[str, Product] = {}
    for start in range(0, len(ids), _GET_CHUNK):
        out.update(engine.get(ids[start : start + _GET_CHUNK]))
    return out


def best_space(engine: Engine) -> str:
    """``tuned`` when a tuned head serves the catalogue, else ``image``."""
    return "tuned" if has_head(engine) else "image"


def _vectors(engine: Engine, ids: list[str], space: str = "image") -> tuple[list[str], np.ndarray]:
    """The ids that have a vector in ``space`` (``tuned``: the head's) and their unit rows."""
    if not ids:
        return [], np.zeros((0, 0), dtype=np.float32)
    if space == "tuned":
        matrix = head_matrix(engine, ids)
    else:
        matrix = np.asarray(engine.vector_matrix(ids, space), dtype=np.float32)
    keep = np.linalg.norm(matrix, axis=1) > 0
    return [p for p, ok in zip(ids, keep.tolist(), strict=True) if ok], unit_rows(
        matrix[keep], dtype=None
    )


def rejections(engine: Engine) -> dict[str, dict[str, list[str]]]:
    raw = engine.get_meta(REJECTED_KEY)
    return json.loads(raw) if raw else {}


@dataclass
class _Voters:
    """The products that have the field (not inferred): ids, values, unit vectors."""

    ids: list[str]
    values: list[str]
    matrix: np.ndarray

    @classmethod
    def build(
        cls, engine: Engine, products: dict[str, Product], fld: str, space: str = "image"
    ) -> _Voters:
        labelled = sorted(
            pid
            for pid, p in products.items()
            if field_values(p, fld) and fld not in p.attributes.get(INFERRED_KEY, [])
        )
        ids, matrix = _vectors(engine, labelled, space)
        return cls(ids, [field_values(products[pid], fld)[0] for pid in ids], matrix)

    def neighbours(
        self, queries: np.ndarray, k: int, progress: Progress | None = None
    ) -> list[list[Neighbour]]:
        """The ``k`` most similar voters of each query row, most similar first."""
        out: list[list[Neighbour]] = []
        if not self.ids:
            if progress is not None:
                progress.advance(len(queries))
            return [[] for _ in range(len(queries))]
        k = min(k, len(self.ids))
        for start in range(0, len(queries), _SIM_CHUNK):
            sims = queries[start : start + _SIM_CHUNK] @ self.matrix.T
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            for row, cols in zip(sims, top, strict=True):
                order = cols[np.argsort(-row[cols], kind="stable")]
                out.append(
                    [Neighbour(self.ids[c], float(row[c]), self.values[c]) for c in order.tolist()]
                )
            if progress is not None:
                progress.advance(len(sims))
        return out


def propose(
    engine: Engine,
    fld: str,
    *,
    k: int = DEFAULT_K,
    min_confidence: float = 0.0,
    limit: int | None = 50,
    filters: Filter | None = None,
    ids: Sequence[str] | None = None,
    space: str | None = None,
    progress: Progress | None = None,
) -> list[Proposal]:
    """Proposals for products missing ``fld`` (those matching ``filters``, or ``ids``), the most
    confident first; every product of the catalogue that has the field can vote, neighbours
    in ``space`` (``image``, ``tuned``; default :func:`best_space`)."""
    fld = check_field(fld)
    if k < 1:
        raise InvalidInput(f"k must be at least 1, got {k}")
    if not 0.0 <= min_confidence <= 1.0:
        raise InvalidInput(f"min_confidence must be in [0, 1], got {min_confidence}")
    if limit is not None and limit < 1:
        raise InvalidInput(f"limit must be at least 1, got {limit}")
    space = space or best_space(engine)
    products = _products(engine, engine.all_ids())
    voters = _Voters.build(engine, products, fld, space)
    if ids is not None:
        candidates = [pid for pid in dict.fromkeys(ids) if pid in products]
    else:
        candidates = select_ids(engine, filters) if filters is not None else sorted(products)
    missing = [
        pid for pid in candidates if pid in products and not field_values(products[pid], fld)
    ]
    missing_ids, queries = _vectors(engine, missing, space)
    rejected = rejections(engine)
    proposals = []
    progress = progress or Progress()
    progress.stage(f"voting on {fld}", len(missing_ids))
    for pid, near in zip(missing_ids, voters.neighbours(queries, k, progress), strict=True):
        winner = vote(near, rejected.get(pid, {}).get(fld, []))
        if winner is not None and winner[1] >= min_confidence:
            proposals.append(Proposal(pid, fld, winner[0], winner[1], near))
    proposals.sort(key=lambda p: (-p.confidence, p.id))
    return proposals[:limit] if limit is not None else proposals


def _missing_product(engine: Engine, pid: str, fld: str) -> Product:
    product = engine.get([pid]).get(pid)
    if product is None:
        raise NotFound(f"unknown product id: {pid}", ids=[pid])
    inferred = fld in product.attributes.get(INFERRED_KEY, [])
    if field_values(product, fld) and not inferred:
        raise InvalidInput(
            f"product {pid} already has a {fld} from the catalogue; gap filling only fills gaps",
            id=pid,
            field=fld,
        )
    return product


def accept(engine: Engine, pid: str, fld: str, value: str, k: int = DEFAULT_K) -> dict[str, Any]:
    """Write ``value`` into the product's ``fld``, marked inferred, with the neighbours' vote
    for it as provenance; returns that provenance."""
    fld, value = check_field(fld), check_value(value)
    _missing_product(engine, pid, fld)
    space = best_space(engine)
    products = _products(engine, engine.all_ids())
    voters = _Voters.build(engine, products, fld, space)
    ids, query = _vectors(engine, [pid], space)
    near = voters.neighbours(query, k)[0] if ids else []
    total = sum(max(n.similarity, 0.0) for n in near)
    support = sum(max(n.similarity, 0.0) for n in near if n.value == value)
    details = {
        "confidence": support / total if total > 0 else 0.0,
        "neighbours": [{"id": n.id, "similarity": n.similarity, "value": n.value} for n in near],
    }
    write_values(engine, [pid], fld, value, source="gapfill", details={pid: details})
    return {"id": pid, "field": fld, "value": value, **details}


def reject(engine: Engine, pid: str, fld: str, value: str) -> dict[str, Any]:
    """Remember that ``value`` is wrong for this product's ``fld``; the product is unchanged."""
    fld, value = check_field(fld), check_value(value)
    _missing_product(engine, pid, fld)
    rejected = rejections(engine)
    values = rejected.setdefault(pid, {}).setdefault(fld, [])
    if value not in values:
        values.append(value)
        engine.set_meta(REJECTED_KEY, json.dumps(rejected, ensure_ascii=False))
    return {"id": pid, "field": fld, "value": value, "rejected": list(values)}
