"""The rescore script's formula: a numpy copy of the Painless source (the reference every
ranking test compares against), checked against ``reranker.scoring`` offline and against a
the live node (``make test`` starts it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from lookalike.engines.opensearch.rescore import (
    AGGREGATIONS,
    SCRIPT_SOURCE,
    combined_params,
    keyword_scaling,
    script_params,
    signal_params,
)
from reranker import scoring


def painless_reference(params: dict[str, Any], docs: list[dict[str, np.ndarray]]) -> np.ndarray:
    """Line-by-line numpy copy of SCRIPT_SOURCE; each doc maps a field to its vector."""
    out = []
    for doc in docs:
        total = 0.0
        for sig in params["signals"]:
            v = doc.get(sig["field"])
            if v is None:
                continue
            agg = 0.0
            for i, a in enumerate(sig["anchors"]):
                s = float(np.dot(a, v) / (np.linalg.norm(a) * np.linalg.norm(v)))
                c = sig["coef"][i]
                t = 1.0 - c * (1.0 - s) if sig["mode"] == "min" else c * s
                if i == 0:
                    agg = t
                elif sig["mode"] == "max":
                    agg = max(agg, t)
                elif sig["mode"] == "min":
                    agg = min(agg, t)
                else:
                    agg += t
            neg = 0.0
            for j, n in enumerate(sig["negatives"]):
                s = float(np.dot(n, v) / (np.linalg.norm(n) * np.linalg.norm(v)))
                neg += sig["neg_coef"][j] * s
            total += sig["weight"] * (agg - neg)
        out.append(total + params["shift"] + params["offset"])
    return np.asarray(out)


def image_docs(vectors: np.ndarray) -> list[dict[str, np.ndarray]]:
    return [{"vec_image": v} for v in vectors]


def unit_rows(rng: np.random.Generator, n: int, dim: int = 8) -> np.ndarray:
    x = rng.standard_normal((n, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("mode", AGGREGATIONS)
@pytest.mark.parametrize("n_neg", [0, 2])
def test_script_formula_equals_reranker_formula(mode: str, n_neg: int) -> None:
    rng = np.random.default_rng(len(mode) * 10 + n_neg)
    anchors, cands = unit_rows(rng, 3), unit_rows(rng, 40)
    negatives = unit_rows(rng, n_neg) if n_neg else None
    weights, neg_weights = [2.0, 1.0, 0.5], [1.0, 3.0][:n_neg]
    params = script_params(
        anchors, weights, negatives, neg_weights or None, 0.7, mode, signal_weight=1.5
    )
    got = painless_reference(params, image_docs(cands)) - params["offset"]
    sims = scoring.cosine_matrix(cands, anchors)
    expected = scoring.aggregate_terms(sims, np.array(weights), mode, anchors).sum(1)
    if negatives is not None:
        neg_sims = scoring.cosine_matrix(cands, negatives)
        expected += scoring.negative_terms(neg_sims, np.array(neg_weights), 0.7).sum(1)
    np.testing.assert_allclose(got, 1.5 * expected, atol=1e-5)
    assert (painless_reference(params, image_docs(cands)) >= 0).all()  # script_score needs >= 0


def test_keyword_blend_is_minmax() -> None:
    bm25 = np.array([7.5, 3.0, 3.0, 1.25])
    qw, shift = keyword_scaling(float(bm25.min()), float(bm25.max()), 0.4)
    expected = 0.4 * scoring.normalize_keyword(bm25, "minmax")
    np.testing.assert_allclose(qw * bm25 + shift, expected)
    assert keyword_scaling(2.0, 2.0, 0.4) == (0.0, 0.4)
    assert keyword_scaling(0.0, 0.0, 0.4) == (0.0, 0.0)


def test_script_source_is_constant_and_parameterised() -> None:
    rng = np.random.default_rng(5)
    p1 = script_params(unit_rows(rng, 1), mode="max")
    p2 = script_params(unit_rows(rng, 4), [1, 2, 3, 4], unit_rows(rng, 1), mode="min")
    assert set(p1) == set(p2) == {"signals", "shift", "offset"}
    for key in p1:
        assert f"params.{key}" in SCRIPT_SOURCE
    for key in p1["signals"][0]:
        assert f"sig.{key}" in SCRIPT_SOURCE
    assert painless_reference(p1, [{}])[0] == p1["offset"]  # no vector: the signal adds 0


def test_several_signals_combine_like_the_reranker() -> None:
    rng = np.random.default_rng(8)
    img_anchors, txt_anchors = unit_rows(rng, 2, 8), unit_rows(rng, 2, 4)
    img, txt = unit_rows(rng, 25, 8), unit_rows(rng, 25, 4)
    weights = {"visual": 0.7, "text": 0.3}
    params = combined_params(
        [
            signal_params(img_anchors, [1, 3], mode="max", weight=weights["visual"]),
            signal_params(txt_anchors, mode="average", space="text", weight=weights["text"]),
        ],
        shift=0.1,
    )
    docs = [{"vec_image": i, "vec_text": t} for i, t in zip(img, txt, strict=True)]
    docs[3] = {"vec_image": img[3]}  # no text vector: the reranker's zero row
    got = painless_reference(params, docs) - params["offset"] - 0.1
    txt_rows = txt.copy()
    txt_rows[3] = 0
    visual = scoring.aggregate_terms(
        scoring.cosine_matrix(img, img_anchors), np.array([1.0, 3.0]), "max"
    ).sum(1)
    text = scoring.aggregate_terms(
        scoring.cosine_matrix(txt_rows, txt_anchors), np.ones(2), "average", txt_anchors
    ).sum(1)
    expected = scoring.combine({"visual": visual, "text": text}, weights)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert (painless_reference(params, docs) >= 0).all()


# -- against the live node ---------------------------------------------------------------
@pytest.fixture
def cluster_engine() -> Iterator[Any]:
    pytest.importorskip("opensearchpy")
    from lookalike.engines.opensearch import OpenSearchEngine
    from tests.opensearch_live import live_client, unique_prefix

    eng = OpenSearchEngine(client=live_client(), prefix=unique_prefix(), drop_on_close=True)
    try:
        yield eng
    finally:
        eng.close()


@pytest.mark.opensearch
@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_cluster_rescore_matches_reference(cluster_engine: Any, mode: str) -> None:
    from lookalike.engines.opensearch.pushdown import rescored_search
    from tests.test_engine_contract import make_doc

    rng = np.random.default_rng(21)
    docs = [make_doc(f"p{i:02d}", rng, n_images=1, title="shirt") for i in range(30)]
    cluster_engine.upsert(docs)
    cluster_engine.refresh()
    anchors = np.stack([docs[0].images[0].vector, docs[1].images[0].vector])
    negatives = np.stack([docs[2].images[0].vector])
    hits = rescored_search(
        cluster_engine, anchors, 10, weights=[2, 1], negatives=negatives, mode=mode, window=30
    )
    params = script_params(anchors, [2, 1], negatives, mode=mode)
    stored = cluster_engine.vectors([d.id for d in docs])
    ids = sorted(stored)
    ref = painless_reference(params, image_docs(np.stack([stored[i] for i in ids])))
    ref = ref - params["offset"]
    order = sorted(range(len(ids)), key=lambda i: (-ref[i], ids[i]))[:10]
    assert [h.id for h in hits] == [ids[i] for i in order]
    np.testing.assert_allclose([h.score for h in hits], ref[order], atol=1e-4)
