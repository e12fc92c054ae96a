"""What one search costs the engine: anchors are checked with the vectors the scoring then uses.

``GET /search?q&anchor_ids=a,b&filter`` reads each vector space once (the window, the anchors
and the negatives together) and the documents once (the page's hits), on a real embedded
engine whose calls are counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lookalike.api.app import create_app
from lookalike.engines.embedded import EmbeddedEngine
from lookalike.settings import Settings
from tests.test_rerank_reference import build_catalogue


class Counted:
    """Wraps an engine's read methods and counts them (``vectors:<space>`` per space)."""

    def __init__(self, engine: EmbeddedEngine) -> None:
        self.calls: Counter[str] = Counter()
        for name in ("get", "vectors", "vector_matrix", "image_vectors", "fingerprints"):
            setattr(engine, name, self._wrap(name, getattr(engine, name)))

    def _wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def counted(ids: Any, space: str = "image", *rest: Any) -> Any:
            if name in ("vectors", "vector_matrix"):
                self.calls[f"vectors:{space}"] += 1
                return fn(ids, space, *rest)
            self.calls[name] += 1
            return fn(ids)

        return counted


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[tuple[TestClient, Counted]]:
    docs, _ = build_catalogue(seed=5)
    engine = EmbeddedEngine(tmp_path / "data")
    engine.upsert(docs)
    engine.refresh()
    settings = Settings(data_dir=tmp_path / "data", allow_anonymous_writes=False)
    with TestClient(create_app(settings, engine=engine)) as c:
        yield c, Counted(engine)
    engine.close()


def test_search_with_anchors_costs_one_get_and_one_read_per_space(
    client: tuple[TestClient, Counted],
) -> None:
    c, counted = client
    params = {"q": "red", "anchor_ids": "p01,p02:2", "filter": "category=tops", "k": 5}
    c.get("/search", params=params).raise_for_status()  # warm: snapshots load on first use
    counted.calls.clear()
    response = c.get("/search", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["hits"]
    calls = counted.calls
    assert calls["get"] <= 1, calls
    for space in ("image", "text", "attributes"):
        assert calls[f"vectors:{space}"] <= 1, calls
    assert calls["fingerprints"] == 0, calls  # every anchor has an image vector: no lookup


def test_unknown_anchor_is_still_a_404(client: tuple[TestClient, Counted]) -> None:
    c, _ = client
    response = c.get("/search", params={"q": "red", "anchor_ids": "p01,nope"})
    assert response.status_code == 404
    assert response.json()["error"]["details"]["ids"] == ["nope"]
