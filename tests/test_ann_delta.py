"""Rows changed after a graph build go into a small delta graph, searched beside the main one."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lookalike.engines.embedded import EmbeddedEngine
from lookalike.engines.embedded import vectors as vectors_mod
from lookalike.engines.embedded.vectors import AnnPolicy, VectorSpace
from lookalike.filters import Terms
from tests.test_embedded_engine import _clustered, doc

N, DIM = 1200, 32
OPTS: dict[str, Any] = {"ann_threshold": 100, "ann_background": False}


def _engine(folder: Path, delta_min_rows: int = 0, **opts: Any) -> EmbeddedEngine:
    return EmbeddedEngine(folder, **{**OPTS, "ann_delta_min_rows": delta_min_rows, **opts})


def _space(engine: EmbeddedEngine) -> VectorSpace:
    return engine.snapshot.spaces["image"]


def _fill(engine: EmbeddedEngine, seed: int = 1) -> tuple[np.ndarray, list[str]]:
    vecs = _clustered(np.random.default_rng(seed), N, DIM, 12)
    ids = [f"p{i:04d}" for i in range(N)]
    colors = ["red", "blue"] * (N // 2)
    engine.upsert([doc(p, v, fp="v1", color=c) for p, v, c in zip(ids, vecs, colors, strict=True)])
    return vecs, ids


def _exact(engine: EmbeddedEngine, q: np.ndarray, k: int, flt: Any = None) -> list[str]:
    """The exact top-k over what the engine holds now (ties by row, as the engine breaks them)."""
    cat = engine.snapshot.catalog
    space = _space(engine)
    rows = np.flatnonzero(cat.mask(engine._compile(flt)) & space.has(cat.n))
    scores = space.matrix[rows, : len(q)] @ q
    return [cat.ids[r] for r in rows[np.lexsort((rows, -scores))[:k]]]


def _ids(hits: list[Any]) -> list[str]:
    return [h.id for h in hits]


def _moved(rng: np.random.Generator, n: int) -> np.ndarray:
    """Vectors in new places (a cluster of their own), so the old graph cannot find them."""
    return _clustered(rng, n, DIM, 3)


def test_changed_and_new_rows_are_served_by_the_delta_exactly(tmp_path: Path) -> None:
    with _engine(tmp_path / "d") as engine:
        vecs, ids = _fill(engine)
        engine.knn(vecs[0], 5)  # builds the main graph
        space = _space(engine)
        assert space.ann is not None and space.builds == 1
        rng = np.random.default_rng(7)
        moved = _moved(rng, 80)
        engine.upsert([doc(ids[i], moved[i], fp="v2", color="red") for i in range(60)])
        engine.upsert([doc(f"new{i}", moved[60 + i], fp="v1", color="red") for i in range(20)])
        engine.refresh()
        delta = space.delta
        assert delta is not None and delta.live == 80 and delta.size == 80
        assert space.builds == 1  # 80 of 1200 stale: under rebuild_share, no rebuild
        assert np.array_equal(np.flatnonzero(space._stale & space._in_delta)[:60], np.arange(60))
        for q in [*moved[::7], *vecs[100:1200:150]]:
            assert _ids(engine.knn(q, 10)) == _exact(engine, q, 10)
        # the broad filter goes through both graphs with the same mask
        flt = Terms("color", ("red",))
        for q in [*moved[::9], *vecs[::300]]:  # half the rows: the graph path, not exact
            assert _ids(engine.knn(q, 10, filters=flt)) == _exact(engine, q, 10, flt)


def test_a_row_changed_twice_is_never_found_by_its_old_vector(tmp_path: Path) -> None:
    with _engine(tmp_path / "d") as engine:
        vecs, ids = _fill(engine)
        engine.knn(vecs[0], 5)
        space = _space(engine)
        rng = np.random.default_rng(8)
        first, second = _moved(rng, 2)
        far = -first  # nowhere near the first vector
        engine.upsert([doc(ids[5], first, fp="v2")])
        engine.refresh()
        assert _ids(engine.knn(first, 1)) == [ids[5]]
        engine.upsert([doc(ids[5], far, fp="v3")])
        engine.refresh()
        delta = space.delta
        assert delta is not None and delta.size == 2 and delta.live == 1  # the older hidden
        top = engine.knn(first, 50)
        assert ids[5] not in _ids(top)
        assert _ids(top) == _exact(engine, first, 50)
        assert _ids(engine.knn(far, 1)) == [ids[5]]
        # and a third time, back near the first place: found again, once
        engine.upsert([doc(ids[5], second, fp="v4")])
        engine.refresh()
        assert delta.size == 3 and delta.live == 1
        hits = _ids(engine.knn(second, 20))
        assert hits[0] == ids[5] and hits.count(ids[5]) == 1
        assert hits == _exact(engine, second, 20)
        # a deleted row leaves the delta too
        engine.delete([ids[5]])
        engine.refresh()
        assert delta.live == 0
        assert ids[5] not in _ids(engine.knn(second, 50))


def test_a_process_adopting_a_graph_rebuilds_its_delta(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    with _engine(folder) as engine:
        vecs, ids = _fill(engine)
        engine.knn(vecs[0], 5)  # built and persisted
        assert _space(engine).builds == 1
    rng = np.random.default_rng(9)
    moved = _moved(rng, 70)
    with EmbeddedEngine(folder, **OPTS) as writer:  # never loads the space
        writer.upsert([doc(ids[i], moved[i], fp="v2") for i in range(50)])
        writer.upsert([doc(f"new{i}", moved[50 + i], fp="v1") for i in range(10)])
    with _engine(folder) as engine:
        assert _ids(engine.knn(moved[0], 10)) == _exact(engine, moved[0], 10)
        space = _space(engine)
        assert space.builds == 0 and space.adopted_seq is not None
        delta = space.delta
        assert delta is not None and delta.live == 60  # rebuilt from the rows changed since
        # later changes in this process go into the same delta
        engine.upsert([doc(ids[i], moved[60 + i - 100], fp="v3") for i in range(100, 110)])
        engine.upsert([doc(ids[i], vecs[i], fp="v3") for i in range(10)])  # moved back
        engine.refresh()
        assert space.delta is delta and delta.live == 70 and delta.size == 80
        for q in [*moved[::5], *vecs[:10]]:
            assert _ids(engine.knn(q, 10)) == _exact(engine, q, 10)


def test_a_rebuild_replaces_the_delta(tmp_path: Path) -> None:
    with _engine(tmp_path / "d") as engine:
        vecs, ids = _fill(engine)
        engine.knn(vecs[0], 5)
        space = _space(engine)
        rng = np.random.default_rng(10)
        moved = _moved(rng, 130)
        engine.upsert([doc(ids[i], moved[i], fp="v2") for i in range(100)])
        engine.refresh()
        old = space.delta
        assert old is not None and old.live == 100
        engine.upsert([doc(ids[i], moved[i], fp="v2") for i in range(100, 130)])
        engine.knn(moved[0], 5)  # 130 stale > 10% of 1200: rebuilt (this thread)
        assert space.builds == 2
        assert space.delta is not old and space.delta is not None and space.delta.size == 0
        assert not space._in_delta.any()
        assert _ids(engine.knn(moved[3], 10)) == _exact(engine, moved[3], 10)


def test_below_delta_min_rows_stale_rows_are_scanned_exactly(tmp_path: Path) -> None:
    with _engine(tmp_path / "d", delta_min_rows=50) as engine:
        vecs, ids = _fill(engine)
        engine.knn(vecs[0], 5)
        space = _space(engine)
        moved = _moved(np.random.default_rng(11), 60)
        engine.upsert([doc(ids[i], moved[i], fp="v2") for i in range(40)])
        engine.refresh()
        assert space.delta is None  # 40 stale: an exact scan is as fast
        assert _ids(engine.knn(moved[0], 10)) == _exact(engine, moved[0], 10)
        engine.upsert([doc(ids[i], moved[i], fp="v2") for i in range(40, 60)])
        engine.refresh()
        assert space.delta is not None and space.delta.live == 60
        assert _ids(engine.knn(moved[45], 10)) == _exact(engine, moved[45], 10)


def _loaded_space(background: bool) -> tuple[VectorSpace, np.ndarray, threading.RLock]:
    vecs = _clustered(np.random.default_rng(12), N, DIM, 12)
    space = VectorSpace(
        "image", "m@1", AnnPolicy(threshold=0, background=background, delta_min_rows=0)
    )
    lock = threading.RLock()
    space.lock = lock
    space.reserve_rows(N)
    space.load_block(np.arange(N), vecs)
    space.build_ann(np.arange(N), lock, wait=True)
    return space, vecs, lock


def _space_exact(space: VectorSpace, q: np.ndarray, k: int) -> list[int]:
    cand = space.has(N + 100)
    rows, _ = space.exact(q, cand, k)
    return rows.tolist()


def test_rows_changed_during_a_rebuild_wait_in_the_new_delta(monkeypatch: Any) -> None:
    space, vecs, lock = _loaded_space(background=True)
    moved = _moved(np.random.default_rng(13), 20)
    with lock:
        for i in range(10):
            space.set(i, moved[i])
        space.sync_delta()
    space.wait()
    assert space.delta is not None and space.delta.live == 10
    gate = threading.Event()
    real = vectors_mod.AnnIndex.build

    def slow(*args: Any, **kwargs: Any) -> Any:
        gate.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(vectors_mod.AnnIndex, "build", slow)
    space.build_ann(np.arange(N), lock, wait=False)
    with lock:  # changed while the graph builds: into the old delta, and kept after
        for i in range(10, 20):
            space.set(i, moved[i])
        space.sync_delta()
    gate.set()
    space.wait()
    assert space.builds == 2
    delta = space.delta
    assert delta is not None and delta.live == 10
    assert sorted(space._delta_label) == list(range(10, 20))
    cand = space.has(N)
    for q in moved:
        rows, _ = space.knn(q, cand, 10, N)
        assert rows.tolist() == _space_exact(space, q, 10)


def test_searches_beside_background_adds(tmp_path: Path) -> None:
    """faiss must not add while searching: concurrent queries and adds, answers exact."""
    space, vecs, lock = _loaded_space(background=True)
    moved = _moved(np.random.default_rng(14), 400)
    errors: list[BaseException] = []
    stop = threading.Event()

    def query() -> None:
        try:
            while not stop.is_set():
                with lock:
                    cand = space.has(N)
                space.knn(moved[0], cand, 10, N)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=query) for _ in range(3)]
    for t in threads:
        t.start()
    for batch in range(0, 400, 40):
        with lock:
            for i in range(batch, batch + 40):
                space.set(i, moved[i])
            space.sync_delta()
    space.wait()
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert space.delta is not None and space.delta.live == 400
    cand = space.has(N)
    for q in moved[::37]:
        rows, _ = space.knn(q, cand, 10, N)
        assert rows.tolist() == _space_exact(space, q, 10)


@pytest.mark.parametrize("storage", ["sq8", "flat"])
def test_both_storages_make_a_delta(storage: str) -> None:
    vecs = _clustered(np.random.default_rng(15), N, DIM, 12)
    space = VectorSpace(
        "image", "m@1", AnnPolicy(threshold=0, background=False, delta_min_rows=0, storage=storage)
    )
    space.reserve_rows(N)
    space.load_block(np.arange(N), vecs)
    space.build_ann(np.arange(N), space.lock, wait=True)
    moved = _moved(np.random.default_rng(16), 30)
    for i in range(30):
        space.set(i, moved[i])
    space.sync_delta()
    assert space.delta is not None and space.delta.live == 30
    cand = space.has(N)
    for q in moved:
        rows, _ = space.knn(q, cand, 5, N)
        assert rows.tolist() == _space_exact(space, q, 5)


def test_a_narrow_filter_over_many_rows_goes_through_the_graph(monkeypatch: Any) -> None:
    """Under ``min_selectivity`` a filtered set stays exact unless it holds at least
    ``GRAPH_MIN_ROWS`` rows (or names a partitioned value: partitions answer those)."""
    space, vecs, _ = _loaded_space(background=False)
    walks = []
    search = type(space.ann).search

    def counted(self: Any, *args: Any) -> np.ndarray:
        walks.append(1)
        return search(self, *args)

    monkeypatch.setattr(type(space.ann), "search", counted)
    cand = np.zeros(N, dtype=bool)
    cand[::10] = True  # 10% of the rows: under min_selectivity (0.2)
    allowed = int(cand.sum())

    def knn(q: np.ndarray, tokens: tuple[str, ...] | None = None) -> list[int]:
        rows, _ = space.knn(q, cand, 10, N, tokens)
        return rows.tolist()

    def exact(q: np.ndarray) -> list[int]:
        return space.exact(q, cand, 10)[0].tolist()

    monkeypatch.setattr(vectors_mod, "GRAPH_MIN_ROWS", allowed + 1)
    assert knn(vecs[3]) == exact(vecs[3]) and not walks  # a small set: exact
    monkeypatch.setattr(vectors_mod, "GRAPH_MIN_ROWS", allowed)
    got = knn(vecs[3])
    assert len(walks) == 1 and len(set(got) & set(exact(vecs[3]))) >= 8  # the graph
    assert knn(vecs[3], ("category=x",)) == exact(vecs[3]) and len(walks) == 1  # partitions'
