"""Evaluation of "more like this" on a labelled catalogue or a golden set.

Every query anchor is excluded from its own results. Relevance comes from labels (catalogue
fields or attributes: the first label must match, each further matching label raises the
grade) or from a golden-set file that a shop brings (anchor -> graded relevant ids).
Metrics: precision@k, recall@k, nDCG@k, MRR, overall and per value of the first label.

:func:`evaluate_holdout` judges the images alone on a seeded split by product id (the one
`lookalike tune` trains beside): the test products are the queries (never trained on), the
whole catalogue the candidates (``test_only``: the test products alone), text and attribute
signals off, each label judged on its own.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lookalike import holdout
from lookalike.engines import Engine
from lookalike.errors import InvalidInput
from lookalike.metrics import ndcg_at_k, precision_at_k, recall_at_k, reciprocal_rank
from lookalike.progress import Progress
from reranker import Anchor, RerankRequest, run


@dataclass
class Metrics:
    queries: int = 0
    precision: float = 0.0
    recall: float = 0.0
    ndcg: float = 0.0
    mrr: float = 0.0


@dataclass
class EvalReport:
    k: int
    judged_by: str
    overall: Metrics
    per_value: dict[str, Metrics] = field(default_factory=dict)
    p50_ms: float = 0.0
    p95_ms: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def label_of(product: object, label: str) -> str | None:
    """A top-level field (``category``, ``color``, ``brand``) or an attribute's first value."""
    if label in ("category", "color", "brand", "title"):
        return getattr(product, label, None)
    values = getattr(product, "attributes", {}).get(label.removeprefix("attributes.")) or [None]
    return values[0]


class LabelJudge:
    """Graded relevance from labels, vectorised over the whole catalogue."""

    def __init__(self, ids: Sequence[str], labels: Sequence[Sequence[str | None]]) -> None:
        self.ids = list(ids)
        self.row = {pid: i for i, pid in enumerate(self.ids)}
        self.values = [tuple(v) for v in labels]
        columns = list(zip(*self.values, strict=True)) if self.values else []
        codes = []
        for column in columns:
            vocab = {v: i for i, v in enumerate(sorted({c for c in column if c is not None}))}
            codes.append([vocab[c] if c is not None else -1 for c in column])
        self.codes = np.asarray(codes, dtype=np.int64).T.reshape(len(self.ids), len(columns))

    def grades(self, anchor: str) -> np.ndarray:
        """The grade of every catalogue product for this anchor (the anchor itself 0)."""
        i = self.row[anchor]
        anchor_codes = self.codes[i]
        if anchor_codes[0] < 0:
            return np.zeros(len(self.ids), dtype=np.int64)
        same = self.codes == anchor_codes
        same[:, anchor_codes < 0] = False
        out = np.where(same[:, 0], 1 + same[:, 1:].sum(axis=1), 0)
        out[i] = 0
        return out

    def judgeable(self, anchor: str) -> bool:
        return anchor in self.row and self.codes[self.row[anchor], 0] >= 0

    def group(self, anchor: str) -> str:
        return str(self.values[self.row[anchor]][0])


class GoldenJudge:
    """Graded relevance from a golden set: ``{"anchor": id, "relevant": {id: grade}}`` lines."""

    def __init__(self, judgements: dict[str, dict[str, int]]) -> None:
        self.judgements = judgements

    @classmethod
    def load(cls, path: Path) -> GoldenJudge:
        judgements: dict[str, dict[str, int]] = {}
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                    anchor, relevant = str(data["anchor"]), data["relevant"]
                    if isinstance(relevant, list):  # plain lists mean grade 1
                        relevant = {str(r): 1 for r in relevant}
                    judgements[anchor] = {str(k): int(v) for k, v in relevant.items()}
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    raise InvalidInput(
                        f"{path} line {number}: expected "
                        '{"anchor": ID, "relevant": {ID: GRADE, ...}}: ' + str(exc),
                        line=number,
                    ) from None
        return cls(judgements)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def _mean(rows: list[tuple[float, float, float, float]]) -> Metrics:
    if not rows:
        return Metrics()
    p, r, n, m = (statistics.fmean(col) for col in zip(*rows, strict=True))
    return Metrics(len(rows), p, r, n, m)


def score(
    rankings: Iterable[tuple[list[int], list[int], str]], k: int, judged_by: str
) -> EvalReport:
    """Metrics from ``(grades of the ranked ids, grades of every relevant item, group)`` rows."""
    rows: list[tuple[float, float, float, float]] = []
    groups: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    for grades, ideal, group in rankings:
        row = (
            precision_at_k(grades, k),
            recall_at_k(grades, k, len(ideal)),
            ndcg_at_k(grades, k, ideal),
            reciprocal_rank(grades[:k]),
        )
        rows.append(row)
        groups[group].append(row)
    return EvalReport(k, judged_by, _mean(rows), {g: _mean(v) for g, v in sorted(groups.items())})


Ranker = Callable[[str, int], list[str]]


def engine_ranker(engine: Engine, weights: dict[str, float] | None = None) -> Ranker:
    """ "More like this" through the reranker, with the default or the given signal weights."""

    def rank(anchor: str, k: int) -> list[str]:
        request = RerankRequest(anchors=(Anchor(anchor),), k=k, weights=dict(weights or {}))
        return [h.id for h in run(engine, request).hits]

    return rank


def evaluate(
    engine: Engine,
    labels: Sequence[str] = ("category",),
    k: int = 10,
    golden: Path | None = None,
    limit: int | None = None,
    weights: dict[str, float] | None = None,
    progress: Progress | None = None,
) -> EvalReport:
    """Evaluate "more like this" on the indexed catalogue (labels) or a golden set.

    ``weights`` overrides the reranker's signal weights (e.g. ``{"text": 0, "attributes": 0}``
    for the image model alone: text and attributes may carry the very labels judged).
    """
    rank = engine_ranker(engine, weights)
    with_vectors = engine.vectors(engine.all_ids())
    latencies: list[float] = []
    progress = progress or Progress()

    def timed(anchor: str) -> list[str]:
        start = time.perf_counter()
        ranked = rank(anchor, k)
        latencies.append((time.perf_counter() - start) * 1000)
        progress.advance()
        return ranked

    if golden is not None:
        judge = GoldenJudge.load(golden)
        anchors = [a for a in judge.judgements if a in with_vectors][:limit]
        progress.stage("evaluating", len(anchors))
        rows = []
        for anchor in anchors:
            relevant = judge.judgements[anchor]
            ranked = timed(anchor)
            ideal = [g for g in relevant.values() if g > 0]
            rows.append(([relevant.get(r, 0) for r in ranked], ideal, "golden"))
        report = score(rows, k, f"golden set {golden.name}")
    else:
        if not labels:
            raise InvalidInput("name at least one --label, or give a --golden file")
        products = engine.get(engine.all_ids())
        ids = sorted(products)
        label_judge = LabelJudge(ids, [[label_of(products[i], lb) for lb in labels] for i in ids])
        anchors = [a for a in ids if a in with_vectors and label_judge.judgeable(a)][:limit]
        progress.stage("evaluating", len(anchors))
        rows = []
        for anchor in anchors:
            grades_all = label_judge.grades(anchor)
            ranked = timed(anchor)
            grades = [int(grades_all[label_judge.row[r]]) for r in ranked]
            ideal = [int(g) for g in grades_all[grades_all > 0]]
            rows.append((grades, ideal, label_judge.group(anchor)))
        report = score(rows, k, "labels " + ", ".join(labels))
    progress.finish()
    report.p50_ms = statistics.median(latencies) if latencies else 0.0
    report.p95_ms = percentile(latencies, 0.95)
    return report


# The held-out evaluation judges what the images say: text and attributes carry the labels.
HOLDOUT_WEIGHTS: dict[str, float] = {"text": 0.0, "attributes": 0.0}


@dataclass
class HoldoutReport:
    k: int
    seed: int
    train: int
    test: int
    weights: dict[str, float]
    labels: dict[str, Metrics] = field(default_factory=dict)
    p50_ms: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def evaluate_holdout(
    engine: Engine,
    labels: Sequence[str] = ("category", "color"),
    k: int = 10,
    seed: int = 0,
    weights: dict[str, float] | None = None,
    limit: int | None = None,
    test_share: float = holdout.TEST_SHARE,
    test_only: bool = False,
    progress: Progress | None = None,
) -> HoldoutReport:
    """Leave-one-out "more like this" for the held-out products, P@k and nDCG@k per label.

    Queries are the test side of :func:`lookalike.holdout.split`, so a head tuned on the
    training side is judged on queries it never saw; ``test_only`` also excludes the training
    side from every answer (results it never saw either; a sparser pool, lower figures).
    """
    if not labels:
        raise InvalidInput("name at least one --label")
    ids = engine.all_ids()
    with_vectors = set(engine.vectors(ids))
    train, test = holdout.split(ids, seed, test_share)
    queries = [pid for pid in test if pid in with_vectors]
    pool = queries if test_only else sorted(with_vectors)
    products = engine.get(pool)
    judges = {
        label: LabelJudge(pool, [[label_of(products[pid], label)] for pid in pool])
        for label in labels
    }
    effective = {**HOLDOUT_WEIGHTS, **(weights or {})}
    exclude = tuple(train) if test_only else ()
    rows: dict[str, list[tuple[list[int], list[int], str]]] = {label: [] for label in labels}
    latencies: list[float] = []
    progress = progress or Progress()
    progress.stage("evaluating held-out", len(queries[:limit]))
    for anchor in queries[:limit]:
        start = time.perf_counter()
        request = RerankRequest(anchors=(Anchor(anchor),), k=k, weights=effective, exclude=exclude)
        ranked = [h.id for h in run(engine, request).hits]
        latencies.append((time.perf_counter() - start) * 1000)
        progress.advance()
        for label, judge in judges.items():
            if not judge.judgeable(anchor):
                continue
            grades_all = judge.grades(anchor)
            grades = [int(grades_all[judge.row[r]]) for r in ranked if r in judge.row]
            rows[label].append((grades, [int(g) for g in grades_all[grades_all > 0]], ""))
    progress.finish()
    report = HoldoutReport(k, seed, len(train), len(queries), effective)
    for label in labels:
        report.labels[label] = score(rows[label], k, label).overall
    report.p50_ms = statistics.median(latencies) if latencies else 0.0
    return report
