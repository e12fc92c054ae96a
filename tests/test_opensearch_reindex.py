"""Blue/green reindexing for a model change on both engines (model-free baselines as the
"old" and "new" models, so no weights are needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.context import build_context
from indexer.reindex import reindex
from indexer.run import index_catalogue
from lookalike.engines import open_engine
from lookalike.settings import Settings
from tests.conftest import make_records, write_catalogue


def _settings(data_dir: Path, **extra: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "image_model": "pixels",
        "text_model": "none",
        **extra,
    }
    return Settings(**values)  # type: ignore[arg-type]


def _index(settings: Settings, folder: Path, n: int = 6) -> None:
    catalogue = write_catalogue(folder, make_records(n))
    ctx = build_context(settings)
    try:
        index_catalogue(catalogue, ctx)
    finally:
        ctx.engine.close()


def test_embedded_blue_green(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "data")
    _index(settings, tmp_path / "cat")
    with open_engine(settings) as eng:
        old_model = eng.get(["p0"])["p0"].models["image"]
    report = reindex(settings, "color-histogram")
    assert report.switched and report.products == 6 and not report.skipped
    live = tmp_path / "data"
    assert live.is_symlink() and Path(report.target).name == str(live.readlink())
    assert (tmp_path / report.previous[0]).is_dir()  # the old folder is kept for rollback
    with open_engine(settings) as eng:
        assert eng.all_ids() == [f"p{i}" for i in range(6)]
        model = eng.get(["p0"])["p0"].models["image"]
        assert model != old_model and model.startswith("color-histogram")
        assert eng.knn(eng.vectors(["p1"])["p1"], 1)[0].id == "p1"
    again = reindex(settings, "pixels")  # a second switch replaces the symlink atomically
    assert again.switched and Path(again.target).name == str(live.readlink())


@pytest.mark.opensearch
def test_opensearch_blue_green(tmp_path: Path) -> None:
    """On the live node: the new index builds beside the old, the alias swaps in one
    ``_aliases`` call, the old index is deleted, the mapping carries the new model."""
    pytest.importorskip("opensearchpy")
    from tests.opensearch_live import live_client, opensearch_url, unique_prefix

    prefix = unique_prefix()
    alias = f"{prefix}-products"
    settings = _settings(
        tmp_path / "unused", engine="opensearch", opensearch_url=opensearch_url(),
        opensearch_prefix=prefix,
    )  # fmt: skip
    client = live_client()
    try:
        _index(settings, tmp_path / "cat", n=4)
        blue = sorted(client.indices.get_alias(name=alias))
        report = reindex(settings, "color-histogram")
        assert report.switched and report.previous == blue
        (green,) = client.indices.get_alias(name=alias)
        assert green == report.target and not client.indices.exists(index=blue[0])
        source = client.get(index=alias, id="p0")["_source"]
        assert source["models"]["image"].startswith("color-histogram")
        mapping = client.indices.get_mapping(index=green)[green]["mappings"]
        assert mapping["properties"]["vec_image"]["type"] == "knn_vector"
        assert mapping["properties"]["vec_image"]["method"]["engine"] == "lucene"
        assert mapping["_meta"]["models"]["image"].startswith("color-histogram")
        with open_engine(settings) as eng:
            assert eng.all_ids() == [f"p{i}" for i in range(4)]
            assert eng.knn(eng.vectors(["p1"])["p1"], 1)[0].id == "p1"
    finally:
        client.indices.delete(index=f"{prefix}-*", params={"ignore_unavailable": "true"})
