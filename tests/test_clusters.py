"""Clusters: k-means membership, representatives, elbow PNG, exports, assigning a value."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.analysis.clusters import (
    assign_cluster,
    cluster_population,
    cluster_products,
    export_clusters,
    inertia_curve,
    parse_k_range,
    save_elbow,
    select_members,
)
from lookalike.analysis.population import visual_population
from lookalike.analysis.writeback import provenance
from lookalike.errors import InvalidInput
from lookalike.filters import Terms
from tests.helpers_analysis import grouped_engine


def assert_not_blank(path: Path, size: tuple[int, int] | None = None) -> None:
    with Image.open(path) as img:
        assert img.format == "PNG"
        if size is not None:
            assert img.size == size
        pixels = np.asarray(img.convert("L"), dtype=np.float32)
    assert pixels.std() > 5, f"{path} looks blank (pixel std {pixels.std():.2f})"


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    eng = grouped_engine(tmp_path)
    yield eng
    eng.close()


def test_kmeans_recovers_the_visual_groups_and_their_centres(engine) -> None:  # type: ignore[no-untyped-def]
    result = cluster_products(engine, 3)
    assert result.k == 3 and len(result.clusters) == 3
    groups = sorted(sorted({pid.split("-")[0] for pid in c.members}) for c in result.clusters)
    assert groups == [["g0"], ["g1"], ["g2"]]  # each cluster is exactly one group
    assert sorted(c.size for c in result.clusters) == [8, 8, 8]
    pop = visual_population(engine)
    row = {pid: n for n, pid in enumerate(pop.ids)}
    total = 0.0
    for c in result.clusters:
        rows = pop.matrix[[row[pid] for pid in c.members]]
        centre = rows.mean(axis=0)  # converged k-means centre = mean of its members
        dist = ((rows - centre) ** 2).sum(axis=1)
        assert c.representative == c.members[int(np.argmin(dist))]
        assert c.distances == sorted(c.distances)
        total += float(dist.sum())
    assert result.inertia == pytest.approx(total, rel=1e-4)


def test_clusters_are_reproducible_and_respect_filters(engine) -> None:  # type: ignore[no-untyped-def]
    first, again = cluster_products(engine, 3), cluster_products(engine, 3)
    assert [c.members for c in first.clusters] == [c.members for c in again.clusters]
    only = cluster_products(engine, 2, Terms("color", ("red", "green")))
    members = {pid for c in only.clusters for pid in c.members}
    assert members == {f"g{g}-{j}" for g in (0, 1) for j in range(8)}


def test_k_out_of_range_is_invalid_input(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="at least 2"):
        cluster_products(engine, 1)
    with pytest.raises(InvalidInput, match="more than the 24 products"):
        cluster_products(engine, 25)
    with pytest.raises(InvalidInput):
        parse_k_range("5:2")
    assert parse_k_range("2:6") == range(2, 7)


def test_elbow_png_and_inertia_fall_with_k(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pop = visual_population(engine)
    curve = inertia_curve(pop, range(2, 7))
    assert [k for k, _ in curve] == [2, 3, 4, 5, 6]
    inertia = [v for _, v in curve]
    assert inertia[0] > inertia[1] > inertia[-1]  # the elbow: a big drop at k=3, then little
    assert inertia[0] - inertia[1] > 5 * (inertia[1] - inertia[2])
    png = save_elbow(curve, tmp_path / "out" / "elbow.png")
    assert_not_blank(png, (600, 400))


def test_exports_list_every_member_with_its_representative(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cluster_population(visual_population(engine), 3)
    json_path, csv_path = export_clusters(result, engine, tmp_path / "out")
    data = json.loads(json_path.read_text())
    assert data["k"] == 3 and data["inertia"] == pytest.approx(result.inertia)
    first = data["clusters"][0]
    assert set(first) == {"cluster", "size", "representative", "members"}
    assert first["representative"]["id"] == first["members"][0]
    assert first["representative"]["image"].endswith(f"{first['members'][0]}.jpg")
    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 24
    reps = {r["id"] for r in rows if r["representative"] == "1"}
    assert reps == {c.representative for c in result.clusters}
    red = [r for r in rows if r["id"].startswith("g0-")]
    assert {r["color"] for r in red} == {"red"} and len({r["cluster"] for r in red}) == 1


def test_assigning_a_value_to_a_cluster_marks_it_inferred(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cluster_products(engine, 3)
    members = result.clusters[0].members
    assert assign_cluster(engine, members, "usage", "party") == 8
    products = engine.get(members)
    for pid in members:
        assert products[pid].attributes["usage"] == ["party"]
        assert products[pid].attributes["inferred"] == ["usage"]
        assert provenance(engine, pid)["usage"]["source"] == "cluster"
    hits = engine.keyword_search(None, Terms("usage", ("party",)), 100)
    assert sorted(h.id for h in hits) == sorted(members)
    # the visual vectors survive the rewrite: the same clusters come back
    again = cluster_products(engine, 3)
    assert [c.members for c in again.clusters] == [c.members for c in result.clusters]


def test_members_are_the_ids_or_one_cluster_of_the_clustering(engine) -> None:  # type: ignore[no-untyped-def]
    result = cluster_products(engine, 3)
    computed: list[int] = []

    def clustering():  # type: ignore[no-untyped-def]
        computed.append(1)
        return result

    assert select_members(["a", "b"], 1, clustering) == ["a", "b"] and not computed
    assert select_members(None, 2, clustering) == result.clusters[2].members
    with pytest.raises(InvalidInput, match="cluster must be 0-2, got 3"):
        select_members([], 3, clustering)
    with pytest.raises(InvalidInput, match="give ids, or a cluster number"):
        select_members(None, None, clustering)
