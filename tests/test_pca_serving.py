"""A stored PCA is served: the RAM matrix holds reduced vectors and every query path uses them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from indexer.context import build_context
from indexer.run import index_catalogue
from lookalike import pca
from lookalike.engines import open_engine
from reranker import Anchor, RerankRequest, run, similar
from tests.conftest import make_records, model_settings, write_catalogue


def test_search_runs_on_reduced_vectors_in_every_process(tmp_path: Path) -> None:
    records = make_records(36)
    settings = model_settings(tmp_path / "data")
    ctx = build_context(settings)  # type: ignore[arg-type]
    index_catalogue(write_catalogue(tmp_path / "c", records), ctx)
    engine = ctx.engine
    raw_p0 = engine.vectors(["p0"])["p0"]
    assert raw_p0.shape == (1280,)
    before = [h.id for h in similar(engine, "p0", k=5).hits]

    fitted = pca.fit_engine(engine, "image", 16)
    # This process notices the new projection, and so does a fresh one.
    with open_engine(settings) as other:  # type: ignore[arg-type]
        for e in (engine, other):
            reduced = e.vectors(["p0", "p1"])
            assert reduced["p0"].shape == (16,)
            assert np.allclose(reduced["p0"], fitted.reduce(raw_p0)[0], atol=1e-5)
            assert e.snapshot.spaces["image"].width == 16  # type: ignore[attr-defined]
            after = [h.id for h in similar(e, "p0", k=5).hits]
            assert len(after) == 5 and "p0" not in after
            assert len(set(after) & set(before)) >= 3  # 16 of 1280 dims keep the neighbours
            # A raw query vector (an uploaded image) is reduced on the way in.
            assert e.knn(raw_p0, 1, exclude=())[0].id == "p0"
            by_vector = run(e, RerankRequest(query_vectors={"image": raw_p0}, k=3))
            assert by_vector.hits[0].id == "p0"
            by_anchor = run(e, RerankRequest(anchors=(Anchor("p0"),), k=3))
            assert [h.id for h in by_anchor.hits] == after[:3]
    ctx.engine.close()
