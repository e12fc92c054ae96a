"""The indexing pipeline with real models, a real SQLite engine and real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.context import IndexContext, build_context
from indexer.run import index_catalogue
from lookalike.errors import InvalidInput, NotFound
from reranker import search, similar
from tests.conftest import ROOT, make_records, model_settings, write_catalogue


@pytest.fixture
def ctx(tmp_path: Path) -> IndexContext:
    context = build_context(model_settings(tmp_path / "data"))  # type: ignore[arg-type]
    yield context
    context.engine.close()


def test_index_then_reindex_changes_nothing(
    ctx: IndexContext, catalogue_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogue = write_catalogue(catalogue_dir, make_records(24))
    first = index_catalogue(catalogue, ctx)
    assert (first.batches.inserted, first.batches.updated, first.products) == (24, 0, 24)
    assert first.batches.embedded_images == 24
    engine = ctx.engine
    before = {pid: (p.revision, p.models) for pid, p in engine.get(engine.all_ids()).items()}
    assert all(rev == 1 for rev, _ in before.values())
    assert all(m["image"] == ctx.image_vectorizer.tag for _, m in before.values())

    # unchanged records are skipped by fingerprint before any image is read or text embedded
    import indexer.run

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("an unchanged record was processed")

    monkeypatch.setattr(indexer.run, "start_batch", no_work)
    second = index_catalogue(catalogue, ctx)
    assert (second.batches.inserted, second.batches.updated, second.batches.unchanged) == (
        0,
        0,
        24,
    )
    assert second.batches.embedded_images == 0 and second.batches.reused_images == 0
    after = {pid: (p.revision, p.models) for pid, p in engine.get(engine.all_ids()).items()}
    assert after == before


def test_changed_record_updates_only_that_product(ctx: IndexContext, catalogue_dir: Path) -> None:
    records = make_records(12)
    index_catalogue(write_catalogue(catalogue_dir, records), ctx)
    records[3]["title"] = "renamed"
    report = index_catalogue(write_catalogue(catalogue_dir, records), ctx)
    assert (report.batches.updated, report.batches.unchanged) == (1, 11)
    assert report.batches.embedded_images == 0  # same image content: vector reused
    product = ctx.engine.get(["p3"])["p3"]
    assert (product.title, product.revision) == ("renamed", 2)


def test_unreadable_image_is_recorded_and_product_kept(
    ctx: IndexContext, catalogue_dir: Path
) -> None:
    records = make_records(6)
    records[0]["images"] = ["img/p0.jpg", "photos/missing.jpg", "photos/broken.jpg"]
    records[1]["images"] = ["photos/nothing-here.jpg"]
    catalogue_dir.mkdir(parents=True)
    (catalogue_dir / "photos").mkdir()
    (catalogue_dir / "photos" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    report = index_catalogue(write_catalogue(catalogue_dir, records), ctx)
    assert report.batches.inserted == 6
    errors = {(e["id"], Path(e["image"]).name) for e in report.batches.image_errors}
    assert errors == {("p0", "missing.jpg"), ("p0", "broken.jpg"), ("p1", "nothing-here.jpg")}

    p0 = ctx.engine.get(["p0"])["p0"]
    assert [i.error is None for i in p0.images] == [True, False, False]
    assert p0.title == records[0]["title"]
    assert "p0" in ctx.engine.vectors(["p0"])
    p1 = ctx.engine.get(["p1"])["p1"]
    assert p1.images[0].error and "p1" not in ctx.engine.vectors(["p1"])
    with pytest.raises(InvalidInput, match="no image vector"):
        similar(ctx.engine, "p1")
    # p1 is still searchable by keyword.
    assert "p1" in [h.id for h in search(ctx.engine, records[1]["title"], k=5).hits]


def test_bad_records_do_not_stop_the_batch(ctx: IndexContext, catalogue_dir: Path) -> None:
    records = make_records(4)
    catalogue = write_catalogue(catalogue_dir, records)
    lines = catalogue.read_text().splitlines()
    lines.insert(1, json.dumps({"id": "", "images": ["x.jpg"]}))
    lines.insert(3, "not json")
    catalogue.write_text("\n".join(lines) + "\n")
    report = index_catalogue(catalogue, ctx)
    assert report.batches.inserted == 4
    assert [e.line for e in report.record_errors] == [2, 4]


def test_anchor_excluded_and_unknown_anchor(ctx: IndexContext, catalogue_dir: Path) -> None:
    index_catalogue(write_catalogue(catalogue_dir, make_records(24)), ctx)
    result = similar(ctx.engine, "p0", k=30)
    assert "p0" not in [h.id for h in result.hits] and len(result.hits) == 23
    found = search(ctx.engine, "item", anchor_ids=["p0", "p5"], k=30)
    assert {"p0", "p5"}.isdisjoint(h.id for h in found.hits)
    with pytest.raises(NotFound, match="nope"):
        similar(ctx.engine, "nope")
    with pytest.raises(NotFound, match="nope"):
        search(ctx.engine, "item", anchor_ids=["p0", "nope"])


def test_similar_finds_look_alikes(ctx: IndexContext, catalogue_dir: Path) -> None:
    """Products drawn alike (same colour and shape, other noise) are each other's nearest."""
    records = make_records(36)
    index_catalogue(write_catalogue(catalogue_dir, records), ctx)
    by_id = {r["id"]: r for r in records}
    agree = 0
    for rec in records:
        top = similar(ctx.engine, rec["id"], k=1).hits[0]
        twin = by_id[top.id]
        agree += (twin["color"], twin["category"]) == (rec["color"], rec["category"])
    assert agree / len(records) >= 0.8


def test_delete_removes_from_every_query(ctx: IndexContext, catalogue_dir: Path) -> None:
    index_catalogue(write_catalogue(catalogue_dir, make_records(12)), ctx)
    assert ctx.engine.delete(["p1", "p2", "unknown"]) == 2
    ctx.engine.refresh()
    assert ctx.engine.count() == 10
    assert {"p1", "p2"}.isdisjoint(h.id for h in similar(ctx.engine, "p0", k=20).hits)
    assert {"p1", "p2"}.isdisjoint(h.id for h in search(ctx.engine, "item", k=20).hits)


def test_two_writer_processes_at_once(tmp_path: Path, mobilenet_path: Path) -> None:
    """Two `lookalike index` processes on overlapping catalogues: nothing lost, no lock errors."""
    data = tmp_path / "data"
    a = write_catalogue(tmp_path / "a", make_records(60))
    b = write_catalogue(tmp_path / "b", make_records(60)[30:] + make_records(30, prefix="q"))
    env = dict(
        os.environ,
        LOOKALIKE_DATA_DIR=str(data),
        LOOKALIKE_IMAGE_MODEL=str(mobilenet_path),
        LOOKALIKE_IMAGE_TENSOR="GlobalPool",
        LOOKALIKE_TEXT_MODEL="none",
        LOOKALIKE_BATCH_SIZE="8",
    )
    cmd = [sys.executable, "-m", "lookalike.cli", "index", "--json"]
    procs = [
        subprocess.Popen(
            [*cmd, str(c)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in (a, b)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    # The 30 shared ids differ in image files, so whichever writer comes second updates them.
    assert sum(r["inserted"] for r in reports) == 90
    assert sum(r["updated"] for r in reports) == 30
    ctx = build_context(model_settings(data))  # type: ignore[arg-type]
    products = ctx.engine.get(ctx.engine.all_ids())
    assert len(products) == 90
    shared = {f"p{i}" for i in range(30, 60)}
    assert all(p.revision == (2 if pid in shared else 1) for pid, p in products.items())
    assert len(ctx.engine.keyword_search("item", limit=1000)) == 90
    ctx.engine.close()


def test_sentence_transformers_clip_through_the_same_path(
    tmp_path: Path, catalogue_dir: Path
) -> None:
    """A tiny random CLIP folder (users get clip-ViT-B-32) indexes and answers like any model."""
    from tests.helpers_models import build_tiny_clip

    folder = build_tiny_clip(tmp_path / "tiny-clip")
    settings = model_settings(tmp_path / "data", image_model=str(folder), image_tensor=None)
    context = build_context(settings)  # type: ignore[arg-type]
    report = index_catalogue(write_catalogue(catalogue_dir, make_records(8)), context)
    assert report.batches.inserted == 8 and report.batches.embedded_images == 8
    product = context.engine.get(["p0"])["p0"]
    assert product.models["image"] == context.image_vectorizer.tag
    assert "tiny-clip" in product.models["image"]
    hits = similar(context.engine, "p0", k=3).hits
    assert len(hits) == 3 and "p0" not in [h.id for h in hits]
    context.engine.close()
