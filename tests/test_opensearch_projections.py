"""Projections on the live node: what only OpenSearch does (the engine contract covers the
rest): one projected field per fit, earlier fits' values removed, other processes switching
within a second, and ``lookalike pca`` really serving the space reduced."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("opensearchpy")

from lookalike import pca  # noqa: E402
from lookalike.documents import Document, ImageEntry  # noqa: E402
from lookalike.engines.opensearch import OpenSearchEngine  # noqa: E402
from lookalike.engines.opensearch.projected import CACHE_SECONDS  # noqa: E402
from tests.opensearch_live import live_client, opensearch_url, unique_prefix  # noqa: E402


@pytest.fixture
def engine() -> Iterator[OpenSearchEngine]:
    eng = OpenSearchEngine(client=live_client(), prefix=unique_prefix(), drop_on_close=True)
    rng = np.random.default_rng(0)
    docs = []
    for i in range(30):
        v = rng.standard_normal(12).astype(np.float32)
        docs.append(
            Document(
                id=f"p{i:02d}",
                images=[ImageEntry(0, f"https://x/{i}.jpg", f"h{i}", v / np.linalg.norm(v))],
                models={"image": "img@1"},
                fingerprint=f"f{i}",
            )
        )
    eng.upsert(docs)
    eng.refresh()
    try:
        yield eng
    finally:
        eng.close()


def _projected_fields(engine: OpenSearchEngine, pid: str) -> list[str]:
    source: dict[str, Any] = engine.client.get(index=engine.index, id=pid)["_source"]
    return sorted(k for k in source if k.startswith("proj_"))


def test_a_refit_replaces_the_field_and_a_drop_empties_it(engine: OpenSearchEngine) -> None:
    first = pca.fit_engine(engine, "image", 4)
    assert len(_projected_fields(engine, "p00")) == 1
    other = OpenSearchEngine(client=live_client(), prefix=engine.prefix)  # another process
    assert other.vectors(["p00"])["p00"].shape == (4,)
    second = pca.fit_engine(engine, "image", 3)
    assert second.tag != first.tag
    fields = _projected_fields(engine, "p00")
    assert len(fields) == 1 and fields[0].endswith(second.tag.rsplit("-", 1)[1])
    time.sleep(CACHE_SECONDS + 0.1)  # the other process's view expires
    assert other.vectors(["p00"])["p00"].shape == (3,)
    assert [
        c.id for c in other.knn(engine.stored_vectors(["p05"], "image", "img@1")["p05"], 1)
    ] == ["p05"]
    assert engine.drop_projection("image")
    deadline = time.monotonic() + 20
    while _projected_fields(engine, "p00") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _projected_fields(engine, "p00") == []
    assert engine.vectors(["p00"])["p00"].shape == (12,)
    other.client.close()


def test_the_pca_command_serves_the_space_reduced(
    engine: OpenSearchEngine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from lookalike.cli import app

    monkeypatch.setenv("LOOKALIKE_ENGINE", "opensearch")
    monkeypatch.setenv("LOOKALIKE_OPENSEARCH_URL", opensearch_url())
    monkeypatch.setenv("LOOKALIKE_OPENSEARCH_PREFIX", engine.prefix)
    monkeypatch.setenv("LOOKALIKE_DATA_DIR", str(tmp_path / "unused"))
    runner = CliRunner()
    done = runner.invoke(app, ["pca", "--dim", "5"])
    assert done.exit_code == 0, done.output
    assert "stored PCA img@1+pca5-" in done.output
    engine.refresh()
    assert engine.vectors(["p01", "p02"])["p01"].shape == (5,)
    dropped = runner.invoke(app, ["pca", "--drop"])
    assert dropped.exit_code == 0 and "PCA dropped" in dropped.output, dropped.output
    engine.refresh()
    assert engine.vectors(["p01"])["p01"].shape == (12,)


def test_re_ranking_over_a_pca_answers_as_the_embedded_engine(
    engine: OpenSearchEngine, tmp_path: Path
) -> None:
    """The same catalogue and PCA on both engines: the same "more like this" pages (on
    OpenSearch re-scored inside the cluster over the reduced field, and in Python)."""
    from lookalike.engines.embedded import EmbeddedEngine
    from reranker import Anchor, RerankRequest, run, similar

    ids = engine.all_ids()
    docs = []
    for pid, product in engine.get(ids).items():
        images = engine.image_vectors([pid])[pid]
        docs.append(
            Document(
                id=pid,
                images=[
                    ImageEntry(i.position, i.uri, i.hash, images[n])
                    for n, i in enumerate(product.images)
                ],
                models=dict(product.models),
                fingerprint=f"f{pid}",
            )
        )
    with EmbeddedEngine(tmp_path / "data") as embedded:
        embedded.upsert(docs)
        fits = [pca.fit_engine(e, "image", 4) for e in (embedded, engine)]
        same = np.abs(fits[0].components @ fits[1].components.T)  # a sign may flip
        np.testing.assert_allclose(same, np.eye(4), atol=1e-3)
        engine.refresh()
        for pid in ("p03", "p11", "p20"):
            pages = [[h.id for h in similar(e, pid, k=5).hits] for e in (embedded, engine)]
            assert pages[0] == pages[1]
            two = RerankRequest(anchors=(Anchor(pid), Anchor("p00")), k=5)
            sent = engine.client.lookalike_requests
            start = len(sent)
            assert [h.id for h in run(embedded, two).hits] == [h.id for h in run(engine, two).hits]
            rescored = [b for _, _, _, b in sent[start:] if isinstance(b, dict) and "rescore" in b]
            field = f"proj_image_{fits[1].tag.rsplit('-', 1)[1]}"
            assert rescored and all(field in json.dumps(b) for b in rescored)  # pushed down
            engine.rescores = False  # the same through the contract, re-scored in Python
            assert [h.id for h in run(engine, two).hits] == [h.id for h in run(embedded, two).hits]
            engine.rescores = True
