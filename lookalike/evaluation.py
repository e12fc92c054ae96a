"""Quality of "more like this" on a labelled catalogue.

Every product is used once as the anchor (and excluded from its own results); a hit is
relevant when it shares the anchor's label (e.g. ``category``).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from lookalike.engines import Engine
from reranker import similar


@dataclass(frozen=True)
class SimilarEvaluation:
    queries: int
    k: int
    precision: float  # mean share of the top k sharing the anchor's label
    p50_ms: float
    p95_ms: float


def label_of(product: object, label: str) -> str | None:
    """A top-level field (``category``, ``color``, ``brand``) or an attribute's first value."""
    value = getattr(product, label, None)
    if value is None:
        values = getattr(product, "attributes", {}).get(label) or [None]
        value = values[0]
    return value


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def evaluate_similar(engine: Engine, label: str = "category", k: int = 10) -> SimilarEvaluation:
    """Precision@k of ``similar`` on ``label`` with every labelled product as the query."""
    products = engine.get(engine.all_ids())
    with_vectors = engine.vectors(list(products))
    precisions: list[float] = []
    latencies: list[float] = []
    for pid, product in products.items():
        want = label_of(product, label)
        if want is None or pid not in with_vectors:
            continue
        start = time.perf_counter()
        hits = similar(engine, pid, k).hits
        latencies.append((time.perf_counter() - start) * 1000)
        fetched = engine.get([h.id for h in hits])
        precisions.append(sum(label_of(fetched[h.id], label) == want for h in hits) / k)
    if not precisions:
        return SimilarEvaluation(0, k, 0.0, 0.0, 0.0)
    return SimilarEvaluation(
        queries=len(precisions),
        k=k,
        precision=statistics.fmean(precisions),
        p50_ms=statistics.median(latencies),
        p95_ms=percentile(latencies, 0.95),
    )
