"""The `color` signal: a palette vector per image and per product, from the same decoded images,
stored in the engine, re-ranked with its own weight and explained like every signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer.context import IndexContext, build_context
from indexer.run import index_catalogue
from lookalike.vectorizers.baselines import COLOR_SPACE, ColorHistogramVectorizer
from reranker import Anchor, RerankRequest, run
from tests.conftest import make_records, model_settings, write_catalogue


@pytest.fixture
def ctx(tmp_path: Path) -> IndexContext:
    context = build_context(model_settings(tmp_path / "data"))  # type: ignore[arg-type]
    yield context
    context.engine.close()


def test_colour_vectors_per_image_and_product(ctx: IndexContext, catalogue_dir: Path) -> None:
    records = make_records(12)
    report = index_catalogue(write_catalogue(catalogue_dir, records), ctx)
    assert report.batches.inserted == 12
    engine, tag = ctx.engine, ctx.color_vectorizer.tag  # type: ignore[union-attr]
    products = engine.get(engine.all_ids())
    assert all(p.models[COLOR_SPACE] == tag for p in products.values())
    colors = engine.vectors(engine.all_ids(), COLOR_SPACE)
    assert set(colors) == set(products)
    # the product's colour vector is the histogram of its image, computed the same way alone
    first = records[0]
    image = Image.open(catalogue_dir / first["images"][0]).convert("RGB")
    expected = ColorHistogramVectorizer().embed_images([image])[0]
    np.testing.assert_allclose(colors[first["id"]], expected, atol=1e-5)
    # each image's colour vector is cached by content hash beside the image model's vector
    hashes = [i.hash for p in products.values() for i in p.images if i.hash]
    cached = engine.cached_image_vectors(hashes, tag)
    assert set(cached) == set(hashes)


def test_colour_signal_reranks_and_is_explained(ctx: IndexContext, catalogue_dir: Path) -> None:
    records = make_records(24)
    index_catalogue(write_catalogue(catalogue_dir, records), ctx)
    anchor = records[0]["id"]
    colour_only = RerankRequest(
        anchors=(Anchor(anchor),),
        weights={"visual": 0.0, "color": 1.0, "attributes": 0.0},
        k=5,
        explain=True,
    )
    result = run(ctx.engine, colour_only)
    colors = ctx.engine.vectors(ctx.engine.all_ids(), COLOR_SPACE)
    cosines = {pid: float(colors[pid] @ colors[anchor]) for pid in colors if pid != anchor}
    best = sorted(cosines, key=lambda pid: (-cosines[pid], pid))[:5]
    assert [h.id for h in result.hits] == best
    top = result.hits[0]
    assert top.explanation is not None
    entry = top.explanation["signals"][COLOR_SPACE]
    assert entry["weight"] == 1.0
    assert entry["value"] == pytest.approx(cosines[top.id], abs=1e-5)
    assert entry["contribution"] == pytest.approx(cosines[top.id], abs=1e-5)
    # the drawn catalogue cycles colours: the palette alone finds the anchor's colour
    by_id = {r["id"]: r for r in records}
    assert by_id[top.id]["color"] == by_id[anchor]["color"]


def test_turning_the_colour_signal_off_stores_no_colour_space(
    tmp_path: Path, catalogue_dir: Path
) -> None:
    settings = model_settings(tmp_path / "data", color_vectors=False)
    context = build_context(settings)  # type: ignore[arg-type]
    try:
        index_catalogue(write_catalogue(catalogue_dir, make_records(4)), context)
        ids = context.engine.all_ids()
        assert context.engine.vectors(ids, COLOR_SPACE) == {}
        assert all(COLOR_SPACE not in p.models for p in context.engine.get(ids).values())
    finally:
        context.engine.close()


def test_a_pca_serves_the_colour_space_reduced(ctx: IndexContext, catalogue_dir: Path) -> None:
    from lookalike.pca import fit_engine

    index_catalogue(write_catalogue(catalogue_dir, make_records(24)), ctx)
    ids = ctx.engine.all_ids()
    full = ctx.engine.vectors(ids, COLOR_SPACE)
    pca = fit_engine(ctx.engine, COLOR_SPACE, 8)
    reduced = ctx.engine.vectors(ids, COLOR_SPACE)
    assert {len(v) for v in reduced.values()} == {8}
    np.testing.assert_allclose(reduced[ids[0]], pca.apply(full[ids[0]])[0], atol=1e-5)
    request = RerankRequest(anchors=(Anchor(ids[0]),), weights={"visual": 0.0, "color": 1.0})
    assert len(run(ctx.engine, request).hits) == 10
