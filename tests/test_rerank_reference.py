"""A plain-Python reference of every scoring formula, and hypothesis tests that the service's order
through the embedded engine equals the reference's on random catalogues and requests.

The reference is written independently of ``reranker.scoring`` (loops over scalars, its own
padding), following the formulas in the README's "Re-ranking" section.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lookalike.documents import Document, ImageEntry
from lookalike.engines.embedded import EmbeddedEngine
from lookalike.filters import Filter, Term
from lookalike.vectors import unit_mean
from reranker import Anchor, RerankRequest, run
from reranker.anchors import QUERY_ANCHOR
from reranker.request import DEFAULT_WEIGHTS

N = 48
WORDS = ["red", "blue", "shirt", "dress", "shoe", "cotton", "silk", "bag"]
CATEGORIES = ["tops", "shoes", "bags"]
SPACES = {"visual": "image", "text": "text", "attributes": "attributes"}
ATTR_DIM = 7


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def build_catalogue(seed: int = 3) -> tuple[list[Document], dict[str, dict[str, np.ndarray]]]:
    """Random products: 8-d image, 6-d text (some without), one-hot attributes of varying length."""
    rng = np.random.default_rng(seed)
    docs, vecs = [], {"image": {}, "text": {}, "attributes": {}}
    for i in range(N):
        pid = f"p{i:02d}"
        image = _unit(rng.standard_normal(8))
        vectors: dict[str, np.ndarray] = {}
        models = {"image": "img@1"}
        if i % 5:
            vectors["text"] = _unit(rng.standard_normal(6))
            models["text"] = "txt@1"
        width = 4 if i % 3 == 0 else ATTR_DIM  # older products: a shorter vocabulary
        onehot = np.zeros(width, np.float32)
        onehot[rng.choice(width, size=2, replace=False)] = 1.0
        vectors["attributes"] = _unit(onehot)
        models["attributes"] = "attr@1"
        words = rng.choice(WORDS, size=int(rng.integers(2, 6)))
        docs.append(
            Document(
                id=pid,
                title=" ".join(words),
                category=CATEGORIES[i % 3],
                images=[ImageEntry(0, f"https://img/{pid}.jpg", f"h{pid}", image)],
                vectors=vectors,
                models=models,
                fingerprint=f"fp{pid}",
            )
        )
        vecs["image"][pid] = unit_mean(image[None, :])
        for space, v in vectors.items():
            vecs[space][pid] = v
    return docs, vecs


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedEngine, dict]]:
    docs, vecs = build_catalogue()
    engine = EmbeddedEngine(Path(tmp_path_factory.mktemp("rerank")) / "data")
    engine.upsert(docs)
    engine.refresh()
    yield engine, vecs
    engine.close()


# -- the reference ---------------------------------------------------------------------------


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Dot product of two vectors, the shorter one read as zero-padded."""
    return sum(float(a[i]) * float(b[i]) for i in range(min(len(a), len(b))))


def ref_similarity(c: np.ndarray, anchors: list[tuple[float, np.ndarray]], how: str) -> float:
    sims = [(w, _dot(c, a)) for w, a in anchors]
    top = max(w for w, _ in anchors)
    if how == "average":
        width = max(len(a) for _, a in anchors)
        total = sum(w for w, _ in anchors)
        mean = [sum(w * (float(a[d]) if d < len(a) else 0.0) for w, a in anchors) / total
                for d in range(width)]  # fmt: skip
        norm = math.sqrt(sum(x * x for x in mean))
        return _dot(c, np.array(mean)) / norm if norm > 0 else 0.0
    if how == "sum":
        return sum(w * s for w, s in sims)
    if how == "max":
        return max(w / top * s for w, s in sims)
    return min(1 - w / top * (1 - s) for w, s in sims)  # min


def ref_keyword(raw: list[float], method: str) -> list[float]:
    if not any(b > 0 for b in raw):
        return [0.0] * len(raw)
    if method == "minmax":
        lo, hi = min(raw), max(raw)
        return [(b - lo) / (hi - lo) if hi > lo else 1.0 for b in raw]
    return [61 / (60 + 1 + sum(1 for o in raw if o > b)) for b in raw]


def ref_scores(
    ids: list[str], raw: list[float], req: RerankRequest, vecs: dict[str, dict[str, np.ndarray]]
) -> dict[str, float]:
    """The score of every candidate, formula by formula."""
    weights = {**DEFAULT_WEIGHTS, **req.weights}
    kw = ref_keyword(raw, req.keyword_norm)
    scores = {}
    for n, pid in enumerate(ids):
        total = 0.0
        for signal, space in SPACES.items():
            if weights[signal] <= 0:
                continue
            anchors = [(a.weight, vecs[space][a.id]) for a in req.anchors if a.id in vecs[space]]
            if space in req.query_vectors:
                anchors.append((1.0, req.query_vectors[space]))
            if not anchors:
                continue
            c = vecs[space].get(pid, np.zeros(0))
            value = ref_similarity(c, anchors, req.aggregation)
            negs = [(a.weight, vecs[space][a.id]) for a in req.negatives if a.id in vecs[space]]
            if negs:
                mean = sum(w * _dot(c, v) for w, v in negs) / sum(w for w, _ in negs)
                value -= weights["negative"] * mean
            total += weights[signal] * value
        total += weights["keyword"] * kw[n]
        scores[pid] = total
    return scores


def assert_same_order(got: list[str], ref: dict[str, float], offset: int, k: int) -> None:
    expected = sorted(ref, key=lambda i: (-ref[i], i))[offset : offset + k]
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        # equal, or a tie up to the float32 rounding of the stored vectors
        assert g == e or abs(ref[g] - ref[e]) <= 1e-6 * max(1.0, abs(ref[e])), (got, expected)


# -- property tests --------------------------------------------------------------------------

ids_st = st.sampled_from([f"p{i:02d}" for i in range(N)])
weight_st = st.sampled_from([0.0, 0.2, 0.5, 1.0, 2.5])


@st.composite
def requests(draw: st.DrawFn) -> RerankRequest:
    picked = draw(st.lists(ids_st, min_size=1, max_size=6, unique=True))
    n_anchors = draw(st.integers(1, len(picked)))
    anchors = tuple(Anchor(p, draw(st.sampled_from([0.5, 1.0, 3.0]))) for p in picked[:n_anchors])
    negatives = tuple(Anchor(p, draw(st.sampled_from([1.0, 2.0]))) for p in picked[n_anchors:])
    weights = {s: draw(weight_st) for s in ("visual", "text", "attributes", "keyword", "negative")}
    query = draw(st.one_of(st.none(), st.lists(st.sampled_from(WORDS), min_size=1, max_size=3)))
    filters: Filter | None = draw(st.one_of(st.none(), st.sampled_from(CATEGORIES).map(
        lambda c: Term("category", c))))  # fmt: skip
    query_vectors = {}
    if draw(st.booleans()):
        rng = np.random.default_rng(draw(st.integers(0, 1000)))
        query_vectors["image"] = _unit(rng.standard_normal(8))
    return RerankRequest(
        query=" ".join(query) if query else None,
        anchors=anchors,
        negatives=negatives,
        filters=filters,
        weights=weights,
        aggregation=draw(st.sampled_from(["average", "max", "sum", "min"])),
        keyword_norm=draw(st.sampled_from(["minmax", "rank"])),
        window=draw(st.sampled_from([5, 20, 1000])) if query else 1000,
        k=draw(st.integers(1, 15)),
        offset=draw(st.integers(0, 10)),
        query_vectors=query_vectors,
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(req=requests())
def test_engine_order_equals_reference(
    catalogue: tuple[EmbeddedEngine, dict], req: RerankRequest
) -> None:
    engine, vecs = catalogue
    if req.query:
        found = engine.keyword_search(req.query, req.filters, limit=req.window + len(req.excluded))
        found = [c for c in found if c.id not in req.excluded]
        ids, raw = [c.id for c in found], [c.score for c in found]
    else:  # sort by similar: the whole filtered set (the window covers it), minus anchors
        ids = [i for i in sorted(vecs["image"]) if i not in req.excluded]
        if req.filters is not None:
            cat = req.filters.value  # type: ignore[union-attr]
            ids = [i for i in ids if CATEGORIES[int(i[1:]) % 3] == cat]
        raw = [0.0] * len(ids)
    result = run(engine, req)
    ref = ref_scores(ids, raw, req, vecs)
    assert result.total == len(ids)
    got = [h.id for h in result.hits]
    assert_same_order(got, ref, req.offset, req.k)
    for h in result.hits:
        assert h.score == pytest.approx(ref[h.id], rel=1e-6, abs=2e-6)
    assert result.anchors == [a.id for a in req.anchors] + (
        [QUERY_ANCHOR] if req.query_vectors else []
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(req=requests())
def test_explanation_adds_up_to_the_score(
    catalogue: tuple[EmbeddedEngine, dict], req: RerankRequest
) -> None:
    engine, _ = catalogue
    req.explain = True
    for hit in run(engine, req).hits:
        expl = hit.explanation
        assert expl is not None
        total = sum(s["contribution"] for s in expl["signals"].values())
        assert total == pytest.approx(hit.score, rel=1e-6, abs=2e-6)
        by_anchor = sum(c for group in ("anchors", "negatives") for a in expl[group].values()
                        for c in a.values())  # fmt: skip
        non_keyword = sum(v["contribution"] for k, v in expl["signals"].items() if k != "keyword")
        assert by_anchor == pytest.approx(non_keyword, abs=1e-9)
