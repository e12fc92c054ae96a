"""Ingest on several cores: worker processes give exactly what one process gives.

Real MobileNet, real SQLite/tantivy engine, real worker processes (spawned).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from indexer.context import (
    CRASHED,
    Embedded,
    ImagePool,
    IndexContext,
    Items,
    build_context,
    embed_in_worker,
)
from indexer.run import IndexReport, index_catalogue
from lookalike.engines import Engine
from tests.conftest import make_records, model_settings, write_catalogue

BATCH = 8  # small batches (two workers each): several in flight, images shared across them


def _catalogue(folder: Path) -> Path:
    """30 products; some share image files (or bytes) with a neighbouring batch; bad images."""
    records = make_records(30)
    write_catalogue(folder, records)  # draws img/p*.jpg
    (folder / "photos").mkdir()
    (folder / "photos" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    shutil.copy(folder / "img" / "p2.jpg", folder / "photos" / "copy-of-p2.jpg")  # same bytes
    records[3]["images"] = ["img/p3.jpg", "img/p2.jpg"]  # same file, same batch
    records[9]["images"] = ["img/p9.jpg", "img/p2.jpg"]  # next batch, p2 still in flight
    records[10]["images"] = ["photos/copy-of-p2.jpg"]  # other path, identical bytes
    records[17]["images"] = ["img/p17.jpg", "img/p2.jpg"]  # two batches later: cached by then
    records[12]["images"] = ["img/p12.jpg", "photos/broken.jpg"]
    records[13]["images"] = ["photos/broken.jpg", "photos/missing.jpg"]  # same batch
    records[20]["images"] = ["img/p20.jpg", "photos/broken.jpg"]  # next batch: error deferred
    records[22]["images"] = ["img/p22.jpg", "img/p21.jpg"]
    return write_catalogue(folder, records, draw=False)


def _state(engine: Engine) -> dict[str, object]:
    """Everything an index run leaves behind, comparable across runs."""
    ids = sorted(engine.all_ids())
    products = engine.get(ids)
    docs = {
        pid: (
            p.revision,
            p.models,
            [(i.position, i.uri, i.hash, i.error) for i in p.images],
        )
        for pid, p in products.items()
    }
    per_image = engine.image_vectors(ids)
    return {
        "docs": docs,
        "fingerprints": engine.fingerprints(ids),
        "vectors": engine.vectors(ids),
        "image_vectors": per_image,
    }


def _index(tmp: Path, catalogue: Path, workers: int) -> tuple[IndexReport, dict[str, object]]:
    ctx: IndexContext = build_context(model_settings(tmp))  # type: ignore[arg-type]
    try:
        report = index_catalogue(catalogue, ctx, batch_size=BATCH, workers=workers)
        return report, _state(ctx.engine)
    finally:
        ctx.engine.close()


def _same_state(a: dict[str, object], b: dict[str, object]) -> None:
    assert a["docs"] == b["docs"]
    assert a["fingerprints"] == b["fingerprints"]
    for key in ("vectors", "image_vectors"):
        va, vb = a[key], b[key]
        assert isinstance(va, dict) and isinstance(vb, dict)
        assert va.keys() == vb.keys()
        for pid in va:
            np.testing.assert_array_equal(np.asarray(va[pid]), np.asarray(vb[pid]))


def test_two_workers_index_exactly_what_one_process_does(
    tmp_path: Path, mobilenet_path: Path
) -> None:
    catalogue = _catalogue(tmp_path / "catalogue")
    one, state_one = _index(tmp_path / "one", catalogue, workers=1)
    two, state_two = _index(tmp_path / "two", catalogue, workers=2)

    assert two.to_dict() == one.to_dict()  # counts, image errors in order, rejected records
    assert (one.batches.inserted, one.products) == (30, 30)
    # p2's bytes are embedded once although five products in three batches name them
    assert one.batches.embedded_images == 28  # 30 files, p10.jpg and p13.jpg not named
    assert one.batches.reused_images == 2
    errors = [(e["id"], Path(e["image"]).name) for e in one.batches.image_errors]
    assert errors == [
        ("p12", "broken.jpg"),
        ("p13", "broken.jpg"),
        ("p13", "missing.jpg"),
        ("p20", "broken.jpg"),
    ]
    _same_state(state_one, state_two)


def test_reindex_with_workers_changes_nothing(tmp_path: Path, mobilenet_path: Path) -> None:
    catalogue = _catalogue(tmp_path / "catalogue")
    ctx: IndexContext = build_context(model_settings(tmp_path / "data"))  # type: ignore[arg-type]
    try:
        first = index_catalogue(catalogue, ctx, batch_size=BATCH, workers=2)
        before = _state(ctx.engine)
        second = index_catalogue(catalogue, ctx, batch_size=BATCH, workers=2)
        assert (second.batches.inserted, second.batches.updated) == (0, 0)
        assert second.batches.unchanged == 30
        # skipped by fingerprint: only a product stored with an image error is read again
        assert second.batches.embedded_images == 0
        retried = {e["id"] for e in second.batches.image_errors}
        assert retried == {e["id"] for e in first.batches.image_errors} and len(retried) < 30
        assert second.batches.reused_images < first.batches.embedded_images
        _same_state(before, _state(ctx.engine))
    finally:
        ctx.engine.close()


def crash_on_poison(items: Items) -> Embedded:
    """A worker job that dies (as a crashing decoder would) on a source named ``poison``."""
    if any("poison" in source for _, source, _ in items):
        os._exit(3)
    return embed_in_worker(items)


def test_a_worker_crash_costs_only_the_crashing_image(tmp_path: Path, mobilenet_path: Path) -> None:
    folder = tmp_path / "catalogue"
    write_catalogue(folder, make_records(12))
    items = [
        (f"h{i}", str(folder / "img" / f"p{i}.jpg"), (folder / "img" / f"p{i}.jpg").read_bytes())
        for i in range(12)
    ]
    items[5] = ("h5", "poison.jpg", items[5][2])
    with ImagePool(
        str(mobilenet_path), "GlobalPool", workers=2, chunk=4, job=crash_on_poison
    ) as pool:
        vectors, errors, _ = pool.submit(items)()
        assert pool.workers == 2
        assert errors == {"h5": CRASHED}
        assert set(vectors) == {f"h{i}" for i in range(12)} - {"h5"}
        again, no_errors, _ = pool.submit(items[:3])()  # the pool was restarted and still works
        assert set(again) == {"h0", "h1", "h2"} and not no_errors
    ctx = build_context(model_settings(tmp_path / "data"))  # type: ignore[arg-type]
    try:
        local = ctx.image_vectorizer.embed_images([])
        assert local.shape[0] == 0
        from indexer.pipeline import embed_blobs

        reference, _, _ = embed_blobs(ctx.image_vectorizer, items[:3])
        for key in ("h0", "h1", "h2"):
            np.testing.assert_array_equal(reference[key], again[key])
    finally:
        ctx.engine.close()


@pytest.mark.parametrize("workers", [0, 1])
def test_one_worker_or_fewer_runs_in_process(
    tmp_path: Path, mobilenet_path: Path, workers: int
) -> None:
    catalogue = write_catalogue(tmp_path / "catalogue", make_records(6))
    report, _ = _index(tmp_path / "data", catalogue, workers=workers)
    assert (report.batches.inserted, report.batches.embedded_images) == (6, 6)


def test_cli_index_with_workers(model_env: Path, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from lookalike.cli import app

    runner = CliRunner()
    catalogue = write_catalogue(tmp_path / "c", make_records(16))
    result = runner.invoke(app, ["index", str(catalogue), "--workers", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["inserted"], summary["embedded_images"], summary["products"]) == (16, 16, 16)
    refused = runner.invoke(app, ["index", str(catalogue), "--workers", "0"])
    assert refused.exit_code == 2 and "--workers" in refused.output
