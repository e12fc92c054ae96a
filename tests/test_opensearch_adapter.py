"""The OpenSearch adapter against the live node (``make test`` starts it), through a
connection that checks every request body and answer against the official API spec."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("opensearchpy")
spec = pytest.importorskip("tests.opensearch_spec")
if not spec.SPEC_PATH.is_file():
    pytest.skip(f"OpenSearch spec not found at {spec.SPEC_PATH}", allow_module_level=True)

from lookalike.engines import create_engine, open_engine  # noqa: E402
from lookalike.engines.base import UpsertResult  # noqa: E402
from lookalike.engines.opensearch import adapter as adapter_mod  # noqa: E402
from lookalike.engines.opensearch import lifecycle  # noqa: E402
from lookalike.engines.opensearch.adapter import OpenSearchEngine  # noqa: E402
from lookalike.errors import EngineError, InvalidInput, MissingExtra  # noqa: E402
from lookalike.settings import Settings  # noqa: E402
from tests.opensearch_live import live_client, unique_prefix  # noqa: E402
from tests.test_engine_contract import IMAGE_MODEL, make_doc  # noqa: E402
from tests.test_opensearch_bodies import check_golden  # noqa: E402


class FrozenTime:
    """Stands in for the adapter's ``time`` module so versions and timestamps are fixed."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def time_ns(self) -> int:
        return int(self.now * 1e9)

    def monotonic(self) -> float:  # the projections cache's clock: frozen too
        return self.now


def live_engine(prefix: str | None = None, **options: Any) -> OpenSearchEngine:
    return OpenSearchEngine(
        client=live_client(), prefix=prefix or unique_prefix(), initial_backoff=0, **options
    )


@pytest.fixture
def engine() -> Iterator[OpenSearchEngine]:
    eng = live_engine(drop_on_close=True)
    yield eng
    eng.close()


def sent(engine: OpenSearchEngine) -> list[tuple[str, str, dict[str, Any], Any]]:
    """Every request this engine's client sent the node: (method, path, params, body)."""
    return engine.client.lookalike_requests  # type: ignore[no-any-return]


def docs(n: int = 3, seed: int = 1) -> list[Any]:
    rng = np.random.default_rng(seed)
    return [make_doc(f"p{i}", rng, n_images=2, title=f"item {i}", color="Red") for i in range(n)]


def test_write_read_cycle_sends_only_valid_bodies(engine: OpenSearchEngine) -> None:
    batch = docs()
    assert engine.upsert(batch) == UpsertResult(inserted=3)
    assert engine.upsert(batch) == UpsertResult(unchanged=3)
    batch[0].title, batch[0].fingerprint = "changed", "fp-changed"
    assert engine.upsert(batch) == UpsertResult(updated=1, unchanged=2)
    got = engine.get(["p0", "p1", "nope"])
    assert set(got) == {"p0", "p1"}
    assert (got["p0"].title, got["p0"].revision, got["p1"].revision) == ("changed", 2, 1)
    assert all(i.vector is None for i in got["p0"].images)
    assert engine.fingerprints(["p0"]) == {"p0": "fp-changed"}
    np.testing.assert_allclose(engine.image_vectors(["p1"])["p1"][1], batch[1].images[1].vector)
    assert set(engine.vectors(["p2"], "text")) == {"p2"}
    assert set(engine.cached_image_vectors(["hash-p1-0", "x"], IMAGE_MODEL)) == {"hash-p1-0"}
    assert engine.cached_image_vectors(["hash-p1-0"], "other@1") == {}
    engine.set_meta("vocab", "[1]")
    assert (engine.get_meta("vocab"), engine.get_meta("none")) == ("[1]", None)
    assert engine.delete(["p1", "nope"]) == 1
    engine.refresh()
    assert engine.all_ids() == ["p0", "p2"] and engine.count() == 2
    assert [c.id for c in engine.keyword_search(None, limit=1)] == ["p0"]
    assert engine.knn(batch[0].images[0].vector, 0) == []
    assert engine.knn(batch[0].images[0].vector, 5, space="nope") == []
    ops = {(m, spec.operation(m, p)[0]) for m, p, _, _ in sent(engine)}
    assert {
        ("POST", "/_bulk"),
        ("POST", "/{index}/_mget"),
        ("PUT", "/{index}"),
        ("POST", "/{index}/_count"),
        ("POST", "/{index}/_search"),
    } <= ops


def test_bulk_bodies_are_pinned(engine: OpenSearchEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapter_mod, "time", FrozenTime())
    rng = np.random.default_rng(3)
    doc = make_doc("p1", rng, n_images=1, title="Linen dress", brand="Acme", price=12.5)
    doc.images[0].vector = np.array([0.6, 0.8, 0, 0], dtype=np.float32)
    doc.vectors = {"text": np.array([1, 0], dtype=np.float32)}
    doc.attributes = {"Material": ["Linen"]}
    engine.upsert([doc])
    engine.delete(["p1"])
    bulks = [body for m, p, _, body in sent(engine) if p == "/_bulk"]
    for line in (*bulks[0], *bulks[1]):  # the goldens name the default index
        for action in line.values() if len(line) == 1 else ():
            if isinstance(action, dict) and "_index" in action:
                action["_index"] = action["_index"].replace(engine.prefix, "lookalike")
    check_golden("bulk_upsert", bulks[0])
    check_golden("bulk_delete", bulks[1])
    action = bulks[0][0]["index"]
    assert (action["_id"], action["version_type"]) == ("p1", "external")
    assert bulks[0][1]["filter_terms"] == ["attributes.Material=linen", "brand=acme"]


def test_stale_writer_never_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    a = live_engine(drop_on_close=True)
    b = live_engine(a.prefix)
    batch = docs(1)
    a.upsert(batch)
    stale_view = a._mget(a.index, ["p0"], _source_includes="fingerprint,revision")
    clock = FrozenTime(2_000_000_000.0)
    monkeypatch.setattr(adapter_mod, "time", clock)
    batch[0].title, batch[0].fingerprint = "newer", "fp-newer"
    b.upsert(batch)
    clock.now = 1_999_999_999.0  # the slow writer prepared its write earlier
    monkeypatch.setattr(a, "_mget", lambda *args, **kw: stale_view)
    batch[0].title, batch[0].fingerprint = "older", "fp-older"
    a.upsert(batch)  # its version is below the stored one: the node rejects it (409)
    assert b.get(["p0"])["p0"].title == "newer"
    a.close()


def test_large_reads_are_chunked(engine: OpenSearchEngine) -> None:
    engine.upsert(docs(3))
    ids = [f"x{i}" for i in range(2500)] + ["p1"]
    assert set(engine.fingerprints(ids)) == {"p1"}
    sizes = [len(b["ids"]) for m, p, _, b in sent(engine) if p.endswith("/_mget")][-3:]
    assert sizes == [1000, 1000, 501]


def test_invalid_batch_writes_nothing(engine: OpenSearchEngine) -> None:
    good, bad = docs(2)
    bad.vectors["text"] = np.full(8, np.nan, dtype=np.float32)
    with pytest.raises(InvalidInput):
        engine.upsert([good, bad])
    assert not [p for _, p, _, _ in sent(engine) if p == "/_bulk"]
    assert engine.count() == 0


def test_blue_green_alias_swap(engine: OpenSearchEngine) -> None:
    engine.upsert(docs(2))
    engine.refresh()  # listing is a search: it sees writes after a refresh (1 s interval)
    blue = lifecycle.serving_indexes(engine)
    green = lifecycle.create_green(engine, {"image": 16, "text": 8}, {"image": "m@2"}, "green")
    green.upsert(docs(3, seed=9))
    assert engine.all_ids() == ["p0", "p1"]  # the old index serves while the new one builds
    assert lifecycle.switch_alias(engine, green.index) == blue
    assert lifecycle.serving_indexes(engine) == [f"{engine.prefix}-products-green"]
    green.refresh()
    assert engine.all_ids() == ["p0", "p1", "p2"]
    assert not engine.client.indices.exists(index=blue[0])
    swap = [b for m, p, _, b in sent(engine) if p == "/_aliases"][0]
    assert [next(iter(a)) for a in swap["actions"]] == ["remove", "add"]


def test_growing_attribute_space_is_padded(engine: OpenSearchEngine) -> None:
    first, second, third = docs(3)
    first.vectors["attributes"] = np.array([0.6, 0.8, 0, 0, 0], dtype=np.float32)
    second.vectors["attributes"] = np.array([0, 0, 0, 0, 0, 0, 1], dtype=np.float32)
    third.vectors["attributes"] = np.zeros(7, dtype=np.float32)  # no attributes known
    engine.upsert([first])
    engine.upsert([second, third])  # a grown vocabulary fits without a mapping change
    engine.refresh()
    assert engine.dims()["attributes"] == 256
    assert not [p for m, p, _, _ in sent(engine) if p.endswith("/_mapping") and m == "PUT"]
    stored = engine.vectors(["p0", "p1", "p2"], "attributes")
    assert set(stored) == {"p0", "p1"} and stored["p1"].shape == (256,)
    assert stored["p1"][6] == 1 and not stored["p1"][7:].any()
    assert engine.knn(second.vectors["attributes"], 1, space="attributes")
    third.vectors["attributes"] = np.ones(300, dtype=np.float32)
    third.fingerprint = "fp-grown"
    with pytest.raises(EngineError, match="reindex"):
        engine.upsert([third])


def test_transport_catches_a_broken_body(
    engine: OpenSearchEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.upsert(docs(1))
    real = adapter_mod.q.knn_body

    def broken(*args: Any) -> dict[str, Any]:
        body = real(*args)
        body["query"]["knn"]["vec_image"]["k"] = "many"
        return body

    monkeypatch.setattr(adapter_mod.q, "knn_body", broken)
    with pytest.raises(spec.SpecViolation, match="knn/vec_image/k"):
        engine.knn(np.ones(16, dtype=np.float32), 3)


def test_errors_are_translated() -> None:
    eng = OpenSearchEngine(url="http://127.0.0.1:9", max_retries=0)
    with pytest.raises(EngineError):
        eng.count()


def test_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opensearchpy", None)
    with pytest.raises(MissingExtra, match="install the 'opensearch' extra"):
        create_engine("opensearch", "unused")


def test_factory_reads_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENSEARCH_URL", "http://search.internal:9200")
    settings = Settings(engine="opensearch", opensearch_prefix="shop")
    eng = open_engine(settings)
    assert isinstance(eng, OpenSearchEngine)
    assert (eng.alias, eng.meta_index) == ("shop-products", "shop-meta")
    hosts = eng.client.transport.hosts
    assert json.dumps(hosts).count("search.internal") == 1
