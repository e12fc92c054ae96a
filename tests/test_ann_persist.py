"""Persisted HNSW graphs: built once, adopted by the next engine on the same data directory."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lookalike import pca
from lookalike.engines.embedded import EmbeddedEngine
from lookalike.engines.embedded.vectors import VectorSpace
from lookalike.filters import Terms
from tests.test_embedded_engine import _clustered, doc

N, DIM = 1200, 32
OPTS: dict[str, Any] = {"ann_threshold": 100, "ann_background": False}


def _space(engine: EmbeddedEngine) -> VectorSpace:
    return engine.snapshot.spaces["image"]


def _ids(hits: list[Any]) -> list[str]:
    return [h.id for h in hits]


def _filled(folder: Path, seed: int = 1) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    vecs = _clustered(rng, N, DIM, 12)
    ids = [f"p{i:04d}" for i in range(N)]
    colors = ["red", "blue"] * (N // 2)
    with EmbeddedEngine(folder, **OPTS) as engine:
        engine.upsert(
            [doc(p, v, fp="v1", color=c) for p, v, c in zip(ids, vecs, colors, strict=True)]
        )
    return vecs, ids


def _built(folder: Path, queries: np.ndarray) -> list[list[str]]:
    """Build the graph in one engine; its answers to ``queries``."""
    with EmbeddedEngine(folder, **OPTS) as engine:
        first = [_ids(engine.knn(q, 10)) for q in queries]
        space = _space(engine)
        assert space.builds == 1 and space.adopted_seq is None
        assert space.mapped  # the builder swapped its matrix for the saved one
        assert len(list((folder / "ann").glob("*.json"))) == 1
        return first


def test_second_engine_adopts_the_graph_instead_of_building(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    vecs, ids = _filled(folder)
    queries = vecs[::97]
    first = _built(folder, queries)
    with EmbeddedEngine(folder, **OPTS) as engine:
        again = [_ids(engine.knn(q, 10)) for q in queries]
        space = _space(engine)
        assert space.builds == 0 and space.adopted_seq is not None
        assert space.ann is not None and len(space.ann.rows) == N
        assert space.mapped  # the matrix too: mapped from the saved file, not read from SQLite
        assert again == first
        got = engine.vectors(ids)
        assert all(np.allclose(got[p], vecs[i]) for i, p in enumerate(ids))
        # the broad filter goes through the adopted graph too
        flt = Terms("color", ("red",))
        red = _ids(engine.knn(vecs[3], 10, filters=flt))
        mat = np.stack([engine.vectors(ids)[i] for i in ids])
        exact = [ids[j] for j in np.argsort(-(mat @ vecs[3])) if j % 2 == 0][:10]
        assert len(set(red) & set(exact)) >= 9


def test_rows_written_after_the_graph_are_found(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    vecs, ids = _filled(folder)
    _built(folder, vecs[:1])
    target = vecs[500]
    with EmbeddedEngine(folder, **OPTS) as writer:  # a writer that never loads the space
        writer.upsert([doc(f"new{i}", target, fp="v1") for i in range(4)])
        writer.upsert([doc(p, target, fp="v2") for p in ids[:3]])
        writer.delete([ids[500]])
    with EmbeddedEngine(folder, **OPTS) as engine:
        top = _ids(engine.knn(target, 7))
        space = _space(engine)
        assert space.builds == 0 and space.adopted_seq is not None  # 8 of 1200 changed
        assert space.mapped  # changed rows overlaid copy-on-write
        assert set(top) == {f"new{i}" for i in range(4)} | set(ids[:3])
        got = engine.vectors([*ids[:4], ids[500], "new0"])
        assert np.allclose(got[ids[0]], target) and np.allclose(got[ids[3]], vecs[3])
        assert np.allclose(got["new0"], target) and ids[500] not in got
        assert ids[500] not in _ids(engine.knn(vecs[500], 50))


def test_too_many_changes_since_the_graph_rebuild_and_persist_again(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    vecs, ids = _filled(folder)
    _built(folder, vecs[:1])
    with EmbeddedEngine(folder, **OPTS) as writer:
        writer.upsert([doc(p, vecs[i], fp="v2") for i, p in enumerate(ids[:200])])
    with EmbeddedEngine(folder, **OPTS) as engine:
        engine.knn(vecs[0], 5)  # 200 stale rows > 10%: rebuilt over the adopted graph
        space = _space(engine)
        assert space.builds == 1
    sidecars = list((folder / "ann").glob("*.json"))
    assert len(sidecars) == 1  # the older graph was pruned
    assert json.loads(sidecars[0].read_text())["seq"] > space.adopted_seq  # type: ignore[operator]
    with EmbeddedEngine(folder, **OPTS) as engine:
        engine.knn(vecs[0], 5)
        assert _space(engine).builds == 0


def _corrupt_graph(folder: Path) -> None:
    graph = next((folder / "ann").glob("*.faiss"))
    graph.write_bytes(graph.read_bytes()[:-100])  # truncated: size no longer matches


def _corrupt_graph_same_size(folder: Path) -> None:
    graph = next((folder / "ann").glob("*.faiss"))
    graph.write_bytes(b"\0" * graph.stat().st_size)


def _corrupt_sidecar(folder: Path) -> None:
    sidecar = next((folder / "ann").glob("*.json"))
    sidecar.write_text(sidecar.read_text()[:20])


def _no_sidecar(folder: Path) -> None:  # a writer that crashed before the rename
    next((folder / "ann").glob("*.json")).unlink()


def _truncated_vectors(folder: Path) -> None:
    matrix = next((folder / "ann").glob("*.vectors.npy"))
    matrix.write_bytes(matrix.read_bytes()[:-4096])


def _wrong_storage(folder: Path) -> None:
    sidecar = next((folder / "ann").glob("*.json"))
    sidecar.write_text(sidecar.read_text().replace('"sq8"', '"flat"'))


@pytest.mark.parametrize(
    "damage",
    [_corrupt_graph, _corrupt_graph_same_size, _corrupt_sidecar, _no_sidecar, _wrong_storage],
)
def test_a_damaged_graph_is_ignored_and_rebuilt(tmp_path: Path, damage: Any) -> None:
    folder = tmp_path / "d"
    vecs, _ = _filled(folder)
    first = _built(folder, vecs[:3])
    damage(folder)
    with EmbeddedEngine(folder, **OPTS) as engine:
        assert [_ids(engine.knn(q, 10)) for q in vecs[:3]] == first
        space = _space(engine)
        assert space.builds == 1 and space.adopted_seq is None


def test_damaged_saved_vectors_are_read_from_sqlite(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    vecs, ids = _filled(folder)
    first = _built(folder, vecs[:3])
    _truncated_vectors(folder)
    with EmbeddedEngine(folder, **OPTS) as engine:
        assert [_ids(engine.knn(q, 10)) for q in vecs[:3]] == first
        space = _space(engine)
        assert not space.mapped and space.builds == 0  # the graph itself is still adopted
        assert np.allclose(engine.vectors([ids[-1]])[ids[-1]], vecs[-1])


def test_another_model_or_projection_ignores_the_graph(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    vecs, ids = _filled(folder)
    _built(folder, vecs[:1])
    with EmbeddedEngine(folder, **OPTS) as engine:  # storage is part of the identity
        engine.policy.storage = "flat"
        engine.knn(vecs[0], 5)
        assert _space(engine).builds == 1 and _space(engine).adopted_seq is None
    with EmbeddedEngine(folder, **OPTS) as engine:
        fitted = pca.fit_engine(engine, "image", 8)
        hits = _ids(engine.knn(vecs[0], 5))  # served reduced: the 32-d graph does not fit
        space = _space(engine)
        assert space.width == 8 and space.builds == 1 and space.adopted_seq is None
        assert hits[0] == ids[0]
    with EmbeddedEngine(folder, **OPTS) as engine:  # the reduced graph is adopted
        assert _ids(engine.knn(vecs[0], 5)) == hits
        assert _space(engine).builds == 0 and _space(engine).projection is not None
    with EmbeddedEngine(folder, **OPTS) as engine:
        engine.drop_projection("image")
        engine.knn(vecs[0], 5)  # full vectors again: the first (sq8, 32-d) graph fits
        assert _space(engine).width == DIM and _space(engine).builds == 0
    # a new model tag: the old graphs never serve its vectors
    rng = np.random.default_rng(9)
    other = _clustered(rng, N, DIM, 12)
    with EmbeddedEngine(folder, **OPTS) as engine:
        batch = [doc(p, v, fp="m2") for p, v in zip(ids, other, strict=True)]
        for d in batch:
            d.models = {"image": "img-test@2"}
        engine.upsert(batch)
    with EmbeddedEngine(folder, **OPTS) as engine:
        assert _ids(engine.knn(other[1], 1)) == [ids[1]]
        assert _space(engine).model == "img-test@2" and _space(engine).builds == 1
    assert len(list((folder / "ann").glob("*.json"))) == 1  # older graphs of the space pruned
    assert fitted.dim == 8


def _adopt_in_child(folder: str, queue: Any) -> None:
    with EmbeddedEngine(Path(folder), **OPTS) as engine:
        vec = engine.vectors(["p0007"])["p0007"]
        hits = _ids(engine.knn(vec, 3))
        space = _space(engine)
        queue.put((space.builds, space.adopted_seq is not None, hits))


def test_a_fresh_process_adopts_the_graph(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    vecs, _ = _filled(folder)
    _built(folder, vecs[:1])
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_adopt_in_child, args=(str(folder), queue))
    proc.start()
    builds, adopted, hits = queue.get(timeout=120)
    proc.join(60)
    assert (builds, adopted) == (0, True)
    assert hits[0] == "p0007"


def test_persistence_can_be_switched_off(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    vecs, _ = _filled(folder)
    with EmbeddedEngine(folder, ann_persist=False, **OPTS) as engine:
        engine.knn(vecs[0], 5)
        assert _space(engine).builds == 1
    assert not (folder / "ann").exists()


def test_rows_changed_during_a_build_survive_the_swap_to_the_saved_matrix(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    vecs, ids = _filled(folder)
    with EmbeddedEngine(folder, **OPTS) as engine:
        engine.knn(vecs[0], 5)
        space = _space(engine)
        files = engine.snapshot.files
        assert files is not None and space.mapped
        meta = files.candidates(space.graph_key(), engine.snapshot.seq)[0]
        # as if these writes landed while the graph was being written: the file has the old rows
        engine.upsert([doc(p, vecs[-1], fp="v2") for p in ids[:5]])
        engine.delete([ids[5]])
        engine.refresh()
        saved = files.open_vectors(space.graph_key(), meta)
        assert saved is not None and np.allclose(saved.matrix[0, :DIM], vecs[0])
        with engine.snapshot.lock:
            space._remap(saved)
        assert space.matrix is saved.matrix
        got = engine.vectors(ids[:7])
        assert all(np.allclose(got[p], vecs[-1]) for p in ids[:5])
        assert ids[5] not in got and np.allclose(got[ids[6]], vecs[6])
        assert set(_ids(engine.knn(vecs[-1], 6))) == {*ids[:5], ids[-1]}


def test_a_stale_process_adopts_a_newer_graph_instead_of_rebuilding(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    vecs, ids = _filled(folder)
    _built(folder, vecs[:1])
    with EmbeddedEngine(folder, **OPTS) as a, EmbeddedEngine(folder, **OPTS) as b:
        a.knn(vecs[0], 5)
        b.knn(vecs[0], 5)
        first = _space(b).adopted_seq
        assert _space(a).builds == 0 and first is not None
        rng = np.random.default_rng(5)
        moved = _clustered(rng, 200, DIM, 12)
        a.upsert([doc(p, moved[i], fp="v2") for i, p in enumerate(ids[:200])])
        a.knn(vecs[0], 5)  # 200 of 1200 stale: rebuilds, saves
        assert _space(a).builds == 1
        b.upsert([doc("late", vecs[700], fp="v1")])  # written after a's graph
        hits = _ids(b.knn(moved[3], 3))  # stale too: takes a's graph from disk
        space = _space(b)
        assert space.builds == 0 and space.adopted_seq is not None and space.adopted_seq > first
        assert hits[0] == ids[3]
        assert set(_ids(b.knn(vecs[700], 2))) == {"late", ids[700]}


def test_two_builders_of_one_seq_keep_their_files_apart(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    vecs, _ = _filled(folder)
    with EmbeddedEngine(folder, **OPTS) as a, EmbeddedEngine(folder, **OPTS) as b:
        a.snapshot.ensure("image")
        b.snapshot.ensure("image")  # both loaded before either graph exists
        assert a.build_ann() and b.build_ann()
        assert _space(a).graph_seq == _space(b).graph_seq
    sidecars = list((folder / "ann").glob("*.json"))
    assert len(sidecars) == 2  # same seq, different tokens: neither overwrote the other
    leftover = folder / "ann" / f".{sidecars[0].name.split('.')[0]}.x.faiss.1.tmp"
    leftover.write_bytes(b"half")
    os.utime(leftover, (0, 0))  # a writer killed long ago
    with EmbeddedEngine(folder, **OPTS) as c:
        first = _ids(c.knn(vecs[0], 5))
        assert _space(c).builds == 0 and first[0] == "p0000"
        c.policy.rebuild_share = 0.0
        c.upsert([doc("extra", vecs[1], fp="v1")])
        c.knn(vecs[0], 5)  # stale past a zero share: rebuilt, saved, older ones pruned
        assert _space(c).builds == 1
    assert len(list((folder / "ann").glob("*.json"))) == 1 and not leftover.exists()
