"""Real data: a slice of fashion-10k indexed with MobileNetV2 answers "more like this" well.

The full-catalogue figure (precision@10 >= 0.55 on 10k) is printed by
benchmarks/fashion_quality.py and recorded in BENCHMARKS.md; this guards against regressions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.context import build_context
from indexer.run import index_catalogue
from lookalike.datasets import convert_dataset
from reranker.evaluation import evaluate
from tests.conftest import FASHION, model_settings, needs_shared

pytestmark = pytest.mark.slow


def test_more_like_this_precision_on_a_fashion_slice(tmp_path: Path) -> None:
    needs_shared(FASHION)
    catalogue = tmp_path / "fashion.jsonl"
    assert convert_dataset("fashion-10k", FASHION, catalogue, limit=2000) == 2000
    ctx = build_context(model_settings(tmp_path / "data"))  # type: ignore[arg-type]
    report = index_catalogue(catalogue, ctx, batch_size=128)
    assert report.batches.inserted == 2000 and not report.batches.image_errors
    visual_only = {"text": 0.0, "attributes": 0.0, "keyword": 0.0}
    result = evaluate(ctx.engine, ["category"], k=10, weights=visual_only).overall
    ctx.engine.close()
    assert result.queries == 2000
    assert result.precision >= 0.55, result
