"""Gap filling: the weighted vote, proposals with provenance, accept (written back, inferred,
surviving a reopen) and reject (product unchanged, value not proposed again)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.analysis.gapfill import Neighbour, accept, propose, reject, vote
from lookalike.analysis.writeback import provenance
from lookalike.engines.embedded import EmbeddedEngine
from lookalike.errors import InvalidInput, NotFound
from lookalike.filters import Terms
from tests.helpers_analysis import grouped_docs, unit

HOLES = ("g0-0", "g1-0", "g2-0")


def test_vote_worked_example() -> None:
    near = [
        Neighbour("a", 0.9, "red"),
        Neighbour("b", 0.8, "red"),
        Neighbour("c", 0.7, "blue"),
        Neighbour("d", -0.2, "green"),  # a dissimilar neighbour weighs nothing
    ]
    value, confidence = vote(near)  # type: ignore[misc]
    assert value == "red" and confidence == pytest.approx(1.7 / 2.4)
    assert vote(near, skip=["red"]) == ("blue", pytest.approx(0.7 / 2.4))
    assert vote(near, skip=["red", "blue"]) is None  # green has no positive weight
    assert vote([]) is None


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    docs = grouped_docs(tmp_path / "img")
    for doc in docs:
        if doc.id in HOLES:
            doc.color = None
        if doc.id == "g2-1":
            doc.attributes = {}
    eng = EmbeddedEngine(tmp_path / "data")
    eng.upsert(docs)
    eng.refresh()
    yield eng
    eng.close()


def test_proposals_come_from_weighted_visual_neighbours(engine) -> None:  # type: ignore[no-untyped-def]
    found = propose(engine, "color", k=10)
    assert [p.id for p in sorted(found, key=lambda p: p.id)] == list(HOLES)
    expected = {"g0-0": "red", "g1-0": "green", "g2-0": "blue"}
    ids = engine.all_ids()
    matrix = engine.vector_matrix(ids, "image")
    row = {pid: n for n, pid in enumerate(ids)}
    products = engine.get(ids)
    for p in found:
        assert p.value == expected[p.id]
        assert len(p.neighbours) == 10
        assert all(n.id not in HOLES for n in p.neighbours)  # only labelled products vote
        assert [n.similarity for n in p.neighbours] == sorted(
            (n.similarity for n in p.neighbours), reverse=True
        )
        assert {n.id.split("-")[0] for n in p.neighbours[:7]} == {p.id.split("-")[0]}
        for n in p.neighbours:  # provenance: the true cosine and the neighbour's own value
            assert n.similarity == pytest.approx(
                float(matrix[row[p.id]] @ matrix[row[n.id]]), abs=1e-5
            )
            assert n.value == products[n.id].color
        weights = [max(n.similarity, 0) for n in p.neighbours]
        support = sum(w for w, n in zip(weights, p.neighbours, strict=True) if n.value == p.value)
        assert p.confidence == pytest.approx(support / sum(weights))
        assert 0.8 < p.confidence <= 1.0
    assert propose(engine, "color", min_confidence=1.0) == []
    only = propose(engine, "color", filters=Terms("category", ("cat1",)))
    assert [p.id for p in only] == ["g1-0"]


def test_attribute_keys_are_filled_too(engine) -> None:  # type: ignore[no-untyped-def]
    found = propose(engine, "fit")
    assert [(p.id, p.value) for p in found] == [("g2-1", "regular")]
    assert found[0].confidence == pytest.approx(1.0)


def test_accept_writes_back_marks_inferred_and_survives_reopening(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    before = engine.vector_matrix(["g0-0"], "image").copy()
    result = accept(engine, "g0-0", "color", "red")
    assert result["value"] == "red" and 0.8 < result["confidence"] <= 1.0
    assert len(result["neighbours"]) == 10
    engine.close()
    with EmbeddedEngine(tmp_path / "data") as again:
        product = again.get(["g0-0"])["g0-0"]
        assert product.color == "red"
        assert product.attributes["inferred"] == ["color"]
        assert product.attributes["fit"] == ["regular"]  # the rest is kept
        assert product.models["image"] == "synthetic@1"
        np.testing.assert_allclose(again.vector_matrix(["g0-0"], "image"), before, atol=1e-6)
        saved = provenance(again, "g0-0")["color"]
        assert saved["source"] == "gapfill" and saved["value"] == "red"
        assert saved["confidence"] == pytest.approx(result["confidence"])
        assert [n["id"] for n in saved["neighbours"]] == [n["id"] for n in result["neighbours"]]
        hits = again.keyword_search(None, Terms("color", ("red",)), 100)
        assert "g0-0" in {h.id for h in hits}
        inferred = again.keyword_search(None, Terms("inferred", ("color",)), 100)
        assert [h.id for h in inferred] == ["g0-0"]
        # an accepted (inferred) value does not vote for others, and is no longer a gap
        later = propose(again, "color")
        assert "g0-0" not in {p.id for p in later}
        assert all(n.id != "g0-0" for p in later for n in p.neighbours)


def test_reject_leaves_the_product_unchanged_and_is_remembered(engine) -> None:  # type: ignore[no-untyped-def]
    before = engine.get(["g1-0"])["g1-0"]
    reject(engine, "g1-0", "color", "green")
    after = engine.get(["g1-0"])["g1-0"]
    assert after == before  # same fields, same revision
    proposal = {p.id: p for p in propose(engine, "color")}.get("g1-0")
    assert proposal is None or (proposal.value != "green" and proposal.confidence < 0.2)


def test_bad_requests_are_clear_errors(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="already has a color"):
        accept(engine, "g0-1", "color", "blue")
    with pytest.raises(NotFound):
        accept(engine, "nope", "color", "red")
    with pytest.raises(InvalidInput, match="cannot be filled"):
        propose(engine, "price")
    with pytest.raises(InvalidInput, match="invalid attribute key"):
        propose(engine, "bad key!")
    with pytest.raises(InvalidInput, match="value must be"):
        reject(engine, "g0-0", "color", "   ")
    assert engine.get(["g0-0"])["g0-0"].color is None  # nothing was written


def test_write_back_keeps_full_vectors_when_a_pca_is_served(tmp_path: Path) -> None:
    """RAM serves PCA-reduced text vectors; the rewrite must store the full ones again."""
    from lookalike.pca import fit_engine

    rng = np.random.default_rng(3)
    docs = grouped_docs(tmp_path / "img")
    raw = {}
    for doc in docs:
        raw[doc.id] = rng.standard_normal(16).astype(np.float32)
        doc.vectors = {"text": raw[doc.id]}
        doc.models["text"] = "txt@1"
        if doc.id == "g0-0":
            doc.color = None
    with EmbeddedEngine(tmp_path / "data") as engine:
        engine.upsert(docs)
        engine.refresh()
        fit_engine(engine, "text", 4)
        assert engine.vectors(["g0-0"], "text")["g0-0"].shape == (4,)  # served reduced
        accept(engine, "g0-0", "color", "red")
        product = engine.get(["g0-0"])["g0-0"]
        assert product.color == "red" and product.models["text"] == "txt@1"
        stored = engine.stored_vectors(["g0-0"], "text", "txt@1")["g0-0"]
        np.testing.assert_allclose(stored, unit(raw["g0-0"]), rtol=1e-5, atol=1e-6)


def test_cli_gaps_and_cluster_assign(
    engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import json

    from typer.testing import CliRunner

    from lookalike.cli import app

    engine.close()  # the CLI opens the same folder itself
    monkeypatch.setenv("LOOKALIKE_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    found = runner.invoke(app, ["gaps", "propose", "--field", "color", "--json"])
    assert found.exit_code == 0, found.output
    proposals = {p["id"]: p for p in json.loads(found.stdout)["proposals"]}
    assert proposals["g2-0"]["value"] == "blue" and len(proposals["g2-0"]["neighbours"]) == 10
    done = runner.invoke(app, ["gaps", "accept", "g2-0", "color", "blue", "--json"])
    assert done.exit_code == 0, done.output
    assert runner.invoke(app, ["gaps", "reject", "g1-0", "color", "green"]).exit_code == 0
    bad = runner.invoke(app, ["gaps", "accept", "g2-1", "color", "red"])
    assert bad.exit_code == 2 and "already has a color" in bad.output
    assigned = runner.invoke(
        app,
        [
            "clusters-assign",
            "--field",
            "usage",
            "--value",
            "sport",
            "--cluster",
            "0",
            "--k",
            "3",
            "--json",
        ],
    )
    assert assigned.exit_code == 0, assigned.output
    assert json.loads(assigned.stdout)["updated"] == 8
    with EmbeddedEngine(tmp_path / "data") as again:
        assert again.get(["g2-0"])["g2-0"].color == "blue"
        assert again.get(["g1-0"])["g1-0"].color is None
        usage = again.keyword_search(None, Terms("usage", ("sport",)), 100)
        assert len(usage) == 8
