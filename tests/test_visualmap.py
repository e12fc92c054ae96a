"""The visual map: layout in the unit square, grid of nearest thumbnails, PNG from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from lookalike.analysis.population import visual_population
from lookalike.analysis.thumbnails import GREY, ImageAccess, thumbnail
from lookalike.analysis.visualmap import grid_assignment, map_points, save_map, visual_map
from lookalike.cli import app
from lookalike.documents import ImageEntry, Product
from lookalike.errors import InvalidInput
from tests.conftest import COLORS
from tests.helpers_analysis import GROUP_COLORS, grouped_engine
from tests.test_clusters import assert_not_blank


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    eng = grouped_engine(tmp_path)
    yield eng
    eng.close()


def _group(pid: str) -> int:
    return int(pid[1])


def test_tsne_map_is_in_the_unit_square_and_keeps_groups_apart(engine) -> None:  # type: ignore[no-untyped-def]
    vmap = visual_map(engine)
    assert sorted(vmap.ids) == engine.all_ids()
    assert vmap.coords.shape == (24, 2)
    assert vmap.coords.min() >= 0.0 and vmap.coords.max() <= 1.0
    groups = np.array([_group(pid) for pid in vmap.ids])
    d = np.linalg.norm(vmap.coords[:, None] - vmap.coords[None], axis=2)
    same = d[(groups[:, None] == groups[None]) & ~np.eye(24, dtype=bool)].mean()
    other = d[groups[:, None] != groups[None]].mean()
    assert same < other / 3
    again = visual_map(engine)
    np.testing.assert_allclose(again.coords, vmap.coords)  # fixed seed


def test_points_carry_labels(engine) -> None:  # type: ignore[no-untyped-def]
    data = map_points(visual_map(engine, limit=10), engine)
    assert len(data["points"]) == 10
    first = data["points"][0]
    assert set(first) == {"id", "x", "y", "title", "category", "color"}
    assert first["color"] == GROUP_COLORS[_group(first["id"])]


def test_grid_cells_show_the_nearest_product() -> None:
    coords = np.array([[0.1, 0.1], [0.9, 0.1], [0.1, 0.9], [0.9, 0.9]])
    cells = grid_assignment(coords, 2)  # row-major, row = y
    assert cells.tolist() == [0, 1, 2, 3]
    assert grid_assignment(coords, 4).reshape(4, 4)[0].tolist() == [0, 0, 1, 1]


def test_map_png_shows_thumbnails_of_each_group(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "map.png"
    vmap = save_map(engine, out, access=ImageAccess(), grid=6, cell=32)
    assert_not_blank(out, (192, 192))
    nearest = grid_assignment(vmap.coords, 6)
    with Image.open(out) as img:
        pixels = np.asarray(img.convert("RGB"), dtype=np.float32)
    for n, idx in enumerate(nearest.tolist()):
        row, col = divmod(n, 6)
        tile = pixels[row * 32 : (row + 1) * 32, col * 32 : (col + 1) * 32].reshape(-1, 3)
        coloured = tile[tile.min(axis=1) < 200]  # the drawn shape, not the white background
        want = np.array(COLORS[GROUP_COLORS[_group(vmap.ids[idx])]], dtype=np.float32)
        assert np.abs(coloured.mean(axis=0) - want).max() < 60


def test_missing_or_forbidden_images_get_a_grey_tile(tmp_path: Path) -> None:
    missing = Product(id="x", images=[ImageEntry(0, str(tmp_path / "nope.jpg"))])
    tile = np.asarray(thumbnail(missing, 16, ImageAccess()))
    assert (tile == np.array(GREY)).all()
    img = tmp_path / "outside" / "a.png"
    img.parent.mkdir()
    Image.new("RGB", (20, 20), (255, 0, 0)).save(img)
    product = Product(id="y", images=[ImageEntry(0, str(img))])
    assert np.asarray(thumbnail(product, 16, ImageAccess()))[8, 8].tolist() == [255, 0, 0]
    fenced = ImageAccess(roots=(tmp_path / "elsewhere",))  # outside the image roots
    assert (np.asarray(thumbnail(product, 16, fenced)) == np.array(GREY)).all()


def test_bad_map_requests(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="unknown map method"):
        visual_map(engine, method="pca3d")
    with pytest.raises(InvalidInput, match="at least 2"):
        visual_map(engine, limit=1)
    with pytest.raises(InvalidInput, match="grid"):
        save_map(engine, Path("unused.png"), access=ImageAccess(), grid=1)


@pytest.mark.slow  # numba compiles UMAP on first use (about 30 s)
def test_umap_when_installed(engine) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("umap", reason="UMAP is the optional extra lookalike[umap]")
    pop = visual_population(engine)
    vmap = visual_map(engine, method="umap")
    assert vmap.coords.shape == (len(pop.ids), 2)
    assert vmap.coords.min() >= 0.0 and vmap.coords.max() <= 1.0


def test_cli_map_and_clusters_write_their_files(
    indexed: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real MobileNet vectors of the 36-product catalogue; images read back for the grid."""
    monkeypatch.setenv("LOOKALIKE_DATA_DIR", str(indexed["data_dir"]))
    runner = CliRunner()
    png, points = tmp_path / "map.png", tmp_path / "points.json"
    args = ["map", "--out", str(png), "--grid", "8", "--cell", "24", "--points", str(points)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert_not_blank(png, (192, 192))
    assert len(json.loads(points.read_text())["points"]) == 36
    out = tmp_path / "clusters"
    args = ["clusters", "--k", "4", "--k-range", "2:6", "--out", str(out), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["k"] == 4 and sum(c["size"] for c in data["clusters"]) == 36
    assert_not_blank(out / "elbow.png", (600, 400))
    assert (out / "clusters.csv").read_text().count("\n") == 37
    bad = runner.invoke(app, ["clusters", "--k", "40", "--out", str(out)])
    assert bad.exit_code == 2 and "more than the 36 products" in bad.output
