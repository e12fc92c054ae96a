"""EmbeddedEngine specifics: real processes on one data directory, rebuilds, ANN, validation."""

from __future__ import annotations

import multiprocessing as mp
import shutil
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lookalike.documents import Document, ImageEntry
from lookalike.engines.embedded import EmbeddedEngine
from lookalike.errors import InvalidInput
from lookalike.filters import And, Range, Term, Terms

MODEL = "img-test@1"
CTX = mp.get_context("spawn")


def doc(pid: str, vec: np.ndarray, title: str = "", fp: str = "", **fields: Any) -> Document:
    d = Document(
        id=pid,
        title=title,
        images=[ImageEntry(0, f"https://img.example/{pid}.jpg", f"h-{pid}-{fp}", vec)],
        models={"image": MODEL},
        fingerprint=fp,
    )
    for key, value in fields.items():
        setattr(d, key, value)
    return d


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# -- processes ---------------------------------------------------------------------------------
def _writer(data_dir: str, name: str, rounds: int, queue: Any) -> None:
    """Upsert own and shared ids for several rounds; report writes per id or a traceback."""
    try:
        rng = np.random.default_rng(abs(hash(name)) % 1000)
        writes: dict[str, int] = {}
        with EmbeddedEngine(Path(data_dir), busy_timeout=60) as engine:
            for r in range(rounds):
                own = [f"{name}-{i}" for i in range((r % 6) * 10, (r % 6) * 10 + 10)]
                shared = [f"shared-{i}" for i in range((r % 4) * 5, (r % 4) * 5 + 5)]
                vecs = unit_rows(rng, len(own) + len(shared), 16)
                batch = [
                    doc(pid, v, f"{name} round {r} item", f"{name}-{r}", color="red")
                    for pid, v in zip(own + shared, vecs, strict=True)
                ]
                engine.upsert(batch)
                for pid in own + shared:
                    writes[pid] = writes.get(pid, 0) + 1
                if r % 5 == 4:
                    engine.refresh()  # two processes syncing the keyword index at once
        queue.put(("ok", name, writes))
    except BaseException:
        queue.put(("error", name, traceback.format_exc()))


def test_two_writers_and_a_reader(tmp_path: Path) -> None:
    data = tmp_path / "data"
    queue = CTX.Queue()
    writers = [CTX.Process(target=_writer, args=(str(data), n, 24, queue)) for n in ("a", "b")]
    for w in writers:
        w.start()
    reader_errors: list[str] = []
    reads = 0
    with EmbeddedEngine(data, busy_timeout=60) as reader:
        while any(w.is_alive() for w in writers) or reads < 3:
            try:
                reader.refresh()
                reader.keyword_search("round item", Term("color", "red"), limit=50)
                reader.knn(np.ones(16, dtype=np.float32), 5, filters=Term("color", "red"))
                reader.count(Term("color", "red"))
                reads += 1
            except Exception:
                reader_errors.append(traceback.format_exc())
        results = [queue.get(timeout=120) for _ in writers]
        for w in writers:
            w.join(timeout=60)
        errors = [r[2] for r in results if r[0] != "ok"]
        assert not errors, errors[0]
        assert not reader_errors, reader_errors[0]
        writes: dict[str, int] = {}
        for _, _, per_id in results:
            for pid, n in per_id.items():
                writes[pid] = writes.get(pid, 0) + n
        reader.refresh()
        assert set(reader.all_ids()) == set(writes) and len(writes) == 140
        stored = reader.get(sorted(writes))
        assert {pid: p.revision for pid, p in stored.items()} == writes  # no lost update
        assert reader.store.max_seq() == sum(writes.values())
        assert reader.count() == 140
        assert len(reader.keyword_search("item", limit=1000)) == 140
        assert len(reader.knn(np.ones(16, dtype=np.float32), 1000)) == 140


def _remote_changes(data_dir: str, queue: Any) -> None:
    try:
        with EmbeddedEngine(Path(data_dir)) as engine:
            engine.upsert([doc("new", np.eye(16, dtype=np.float32)[3], "zebra print", "n1")])
            engine.upsert([doc("p1", np.eye(16, dtype=np.float32)[5], "moved", "p1-v2")])
            engine.delete(["p0"])
        queue.put("ok")
    except BaseException:
        queue.put(traceback.format_exc())


def test_second_process_sees_writes_after_refresh(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    data = tmp_path / "data"
    with EmbeddedEngine(data) as engine:
        vecs = unit_rows(rng, 5, 16)
        engine.upsert([doc(f"p{i}", vecs[i], f"plain item {i}", "v1") for i in range(5)])
        assert engine.keyword_search("zebra") == []
        assert engine.knn(vecs[0], 1)[0].id == "p0"
        queue = CTX.Queue()
        proc = CTX.Process(target=_remote_changes, args=(str(data), queue))
        proc.start()
        assert queue.get(timeout=120) == "ok"
        proc.join(timeout=60)
        engine.refresh()
        assert [c.id for c in engine.keyword_search("zebra")] == ["new"]
        assert engine.knn(np.eye(16, dtype=np.float32)[3], 1)[0].id == "new"
        assert engine.knn(np.eye(16, dtype=np.float32)[5], 1)[0].id == "p1"
        assert "p0" not in {c.id for c in engine.knn(vecs[0], 10)}
        assert "p0" not in {c.id for c in engine.keyword_search("plain item")}
        assert engine.count() == 5


# -- keyword index rebuild ---------------------------------------------------------------------
WORDS = [
    "red",
    "blue",
    "linen",
    "cotton",
    "dress",
    "shirt",
    "boot",
    "sneaker",
    "leather",
    "wool",
    "summer",
    "winter",
]


def test_keyword_rebuild_clusters_documents_by_partition_field(tmp_path: Path) -> None:
    """A rebuild adds each category's documents together (so filtered searches skip the
    other categories' postings); the matches and their scores do not depend on it."""
    import tantivy

    rng = np.random.default_rng(5)
    vecs = unit_rows(rng, 300, 8)
    cats = ["Shoes", "bags", "dresses"]
    docs = [
        doc(f"p{i:03d}", vecs[i], " ".join(rng.choice(WORDS, 4)), "v1", category=cats[i % 3])
        for i in range(300)
    ]
    queries = [
        ("linen dress", Term("category", "shoes")),
        ("boot wool", Term("category", "bags")),
        ("summer", None),
    ]
    results = []
    for fields in (("category",), ()):
        data = tmp_path / f"data-{len(fields)}"
        with EmbeddedEngine(data, partition_fields=fields) as engine:
            engine.upsert(docs)
            engine.rebuild_keyword_index()
            kw = engine.keyword
            searcher = kw._ensure_open().searcher()
            for value in ("shoes", "bags", "dresses"):
                q = tantivy.Query.term_query(kw.schema, "kw", f"category={value}")
                addrs = [a for _, a in searcher.search(q, 300).hits]
                assert len(addrs) == 100 and len({a.segment_ord for a in addrs}) == 1
                span = max(a.doc for a in addrs) - min(a.doc for a in addrs) + 1
                assert (span == 100) == bool(fields)  # contiguous only when clustered
            got = [engine.keyword_search(q, f, limit=300) for q, f in queries]
            assert all(got)
            results.append([sorted((-c.score, c.id) for c in hits) for hits in got])
    assert results[0] == results[1]


def test_keyword_replays_past_a_quarter_of_the_index_recluster_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows replayed after a rebuild are appended; once they pass a quarter of the index
    (and ``REBUILD_MIN``) the next sync rebuilds it clustered again."""
    import tantivy

    from lookalike.engines.embedded import keyword

    monkeypatch.setattr(keyword, "REBUILD_MIN", 10)
    vecs = unit_rows(np.random.default_rng(6), 200, 8)
    cats = ["shoes", "bags"]

    def docs(lo: int, hi: int) -> list[Document]:
        return [
            doc(f"p{i:03d}", vecs[i], "linen", "v1", category=cats[i % 2]) for i in range(lo, hi)
        ]

    def span(engine: EmbeddedEngine) -> int:
        searcher = engine.keyword._ensure_open().searcher()
        q = tantivy.Query.term_query(engine.keyword.schema, "kw", "category=shoes")
        addrs = [a.doc for _, a in searcher.search(q, 200).hits if a.segment_ord == 0]
        return max(addrs) - min(addrs) + 1 if addrs else 0

    with EmbeddedEngine(tmp_path / "data") as engine:
        engine.upsert(docs(0, 100))
        engine.rebuild_keyword_index()
        assert span(engine) == 50
        appended, spans = [], []
        for lo in range(100, 140, 8):  # five replays of 8 rows each
            engine.upsert(docs(lo, lo + 8))
            hits = engine.keyword_search("linen", Term("category", "bags"), 200)
            assert len(hits) == (lo + 8) // 2
            appended.append(engine.keyword._state()["appended"])  # type: ignore[index]
            spans.append(span(engine))
        # the 4th replay passes a quarter of the 124 documents (32 > 31): a clustered rebuild
        assert appended == [8, 16, 24, 0, 8]
        assert spans[3] == 66  # all 66 "shoes" documents contiguous again
        assert spans[2] == 50  # before it, the replayed ones were in segments of their own


def test_keyword_index_can_be_deleted_and_rebuilt(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    data = tmp_path / "data"
    vecs = unit_rows(rng, 200, 8)
    docs = [
        doc(
            f"p{i:03d}",
            vecs[i],
            " ".join(rng.choice(WORDS, 4)),
            "v1",
            color=str(rng.choice(["red", "blue"])),
            price=float(i),
        )
        for i in range(200)
    ]
    queries = [("linen dress", None), ("boot", Term("color", "red")), (None, Range("price", lt=50))]
    with EmbeddedEngine(data) as a:
        a.upsert(docs)
        before = [a.keyword_search(q, f, limit=50) for q, f in queries]
        assert all(before)
        shutil.rmtree(data / "keyword")
        with EmbeddedEngine(data) as b:
            assert [b.keyword_search(q, f, limit=50) for q, f in queries] == before
        a.rebuild_keyword_index()
        assert [a.keyword_search(q, f, limit=50) for q, f in queries] == before
        a.upsert([doc("zz", vecs[0], "unique zanzibar", "v1")])  # replay after a rebuild
        assert [c.id for c in a.keyword_search("zanzibar")] == ["zz"]
        with EmbeddedEngine(data) as b:  # another process recreates the directory under `a`
            b.rebuild_keyword_index()
            b.upsert([doc("yy", vecs[1], "unique yokohama", "v1")])
        assert [c.id for c in a.keyword_search("yokohama")] == ["yy"]
        after = [a.keyword_search(q, f, limit=50) for q, f in queries]
        with EmbeddedEngine(data) as c:
            c.rebuild_keyword_index()
            assert [c.keyword_search(q, f, limit=50) for q, f in queries] == after


# -- ANN -----------------------------------------------------------------------------------------
def _clustered(rng: np.random.Generator, n: int, dim: int, clusters: int) -> np.ndarray:
    centers = unit_rows(rng, clusters, dim)
    x = centers[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_ann_recall_and_updates_after_build(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n, dim = 3000, 48
    vecs = _clustered(rng, n, dim, 30)
    colors = rng.choice(["red", "blue", "green", "black"], n)
    prices = rng.uniform(0, 100, n)
    ids = [f"p{i:04d}" for i in range(n)]
    docs = [
        doc(ids[i], vecs[i], fp="v1", color=str(colors[i]), price=float(prices[i]))
        for i in range(n)
    ]
    with EmbeddedEngine(tmp_path / "d", ann_threshold=500, ann_background=False) as engine:
        for start in range(0, n, 1000):
            engine.upsert(docs[start : start + 1000])
        queries = _clustered(rng, 40, dim, 30)
        engine.knn(queries[0], 10)  # crosses the threshold: builds the graph
        space = engine.snapshot.spaces["image"]
        assert space.ann is not None and len(space.ann.rows) == n
        ref = engine.vectors(ids)

        def recall(flt: Any = None, keep: np.ndarray | None = None) -> float:
            mat = np.stack([ref[i] for i in ids])
            hits = 0
            for q in queries:
                got = {c.id for c in engine.knn(q, 10, filters=flt)}
                scores = mat @ q if keep is None else np.where(keep, mat @ q, -np.inf)
                hits += len(got & {ids[j] for j in np.argsort(-scores)[:10]})
            return hits / (10 * len(queries))

        assert recall() >= 0.95
        broad = np.isin(colors, ["red", "blue"])  # unrelated to the clusters, ~50%: graph
        assert recall(Terms("color", ("red", "blue")), broad) >= 0.95
        narrow = (colors == "green") & (prices < 40)  # ~10%: exact fallback
        assert recall(And((Term("color", "green"), Range("price", lt=40))), narrow) == 1.0

        # rows changed after the build are scanned exactly, deleted ones never come back
        target = queries[5]
        moved = ids[:15]
        engine.upsert([doc(pid, target, fp="v2", color="red") for pid in moved])
        engine.upsert([doc(f"new{i}", target, fp="v1", color="red") for i in range(5)])
        engine.delete(moved[:3])
        engine.refresh()
        assert space.ann is not None and len(space.ann.rows) == n  # not rebuilt yet
        top = {c.id for c in engine.knn(target, 17)}
        assert top == set(moved[3:]) | {f"new{i}" for i in range(5)}
        top_red = {c.id for c in engine.knn(target, 17, filters=Term("color", "red"))}
        assert top_red == top

        # past the stale share, the next query rebuilds the graph
        engine.upsert([doc(pid, vecs[i], fp="v3", color="red") for i, pid in enumerate(ids[:400])])
        engine.knn(target, 5)
        assert space.ann is not None and len(space.ann.rows) == n + 5  # moved[:3] are back


def test_background_ann_build_answers_exactly_meanwhile(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    vecs = _clustered(rng, 1200, 32, 10)
    with EmbeddedEngine(tmp_path / "d", ann_threshold=500) as engine:
        engine.upsert([doc(f"p{i:04d}", v, fp="v1") for i, v in enumerate(vecs)])
        first = engine.knn(vecs[7], 10)  # starts the build in a thread, answers exactly
        assert first[0].id == "p0007"
        space = engine.snapshot.spaces["image"]
        space.wait()
        assert space.ann is not None and space.build_error is None
        assert [c.id for c in engine.knn(vecs[7], 10)] == [c.id for c in first]


# -- validation and all-or-nothing batches ------------------------------------------------
def _bad_docs(rng: np.random.Generator) -> list[tuple[str, Document]]:
    v = unit_rows(rng, 1, 8)[0]
    cases: list[tuple[str, Document]] = []
    d = doc("bad", v.copy(), fp="x")
    assert d.images[0].vector is not None
    d.images[0].vector[2] = np.nan
    cases.append(("NaN", d))
    cases.append(("dtype", doc("bad", np.arange(8), fp="x")))
    cases.append(("1-d", doc("bad", np.stack([v, v]), fp="x")))
    d = doc("bad", v, fp="x")
    d.models = {}
    cases.append(("model tag", d))
    d = doc("bad", v, fp="x")
    d.images[0].hash = None
    cases.append(("hash", d))
    d = doc("bad", v, fp="x")
    d.images.append(ImageEntry(0, "dup", "h2", v))
    cases.append(("duplicate image position", d))
    cases.append(("price", doc("bad", v, fp="x", price=float("nan"))))
    cases.append(("list of strings", doc("bad", v, fp="x", attributes={"material": "cotton"})))
    d = doc("bad", v, fp="x")
    d.vectors = {"text": [0.1, 0.2]}  # type: ignore[dict-item]
    cases.append(("numpy array", d))
    cases.append(("id", doc("", v, fp="x")))
    return cases


def test_invalid_document_rolls_back_whole_batch(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    with EmbeddedEngine(tmp_path / "d") as engine:
        keep = doc("keep", unit_rows(rng, 1, 8)[0], "original", "v1")
        engine.upsert([keep])
        seq = engine.store.max_seq()
        for reason, bad in _bad_docs(rng):
            changed = doc("keep", unit_rows(rng, 1, 8)[0], "changed", "v2")
            fresh = doc("fresh", unit_rows(rng, 1, 8)[0], "fresh", "v1")
            with pytest.raises(InvalidInput, match=reason):
                engine.upsert([changed, bad, fresh])
            assert engine.store.max_seq() == seq
            assert engine.get(["keep", "fresh", "bad"])["keep"].title == "original"
            assert engine.all_ids() == ["keep"]
        assert engine.keyword_search("changed") == [] and engine.count() == 1


def test_revision_survives_delete_and_reinsert(tmp_path: Path) -> None:
    v = np.eye(8, dtype=np.float32)[0]
    with EmbeddedEngine(tmp_path / "d") as engine:
        engine.upsert([doc("p", v, "t", "v1")])
        engine.delete(["p"])
        result = engine.upsert([doc("p", v, "t", "v1")])
        assert result.inserted == 1
        assert engine.get(["p"])["p"].revision == 3
        auto = Document(id="q", title="no fingerprint given")
        assert engine.upsert([auto]).inserted == 1
        assert engine.upsert([Document(id="q", title="no fingerprint given")]).unchanged == 1
        assert engine.fingerprints(["q"])["q"].startswith("auto:")


def test_new_model_tag_becomes_active(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    with EmbeddedEngine(tmp_path / "d") as engine:
        engine.upsert([doc(f"old{i}", unit_rows(rng, 1, 8)[0], fp="v1") for i in range(3)])
        assert len(engine.knn(np.ones(8, dtype=np.float32), 10)) == 3
        new = doc("new", unit_rows(rng, 1, 12)[0], fp="v1")
        new.models = {"image": "img-test@2"}
        engine.upsert([new])
        hits = engine.knn(np.ones(12, dtype=np.float32), 10)
        assert [h.id for h in hits] == ["new"]
        assert set(engine.image_vectors(["old0", "new"])) == {"new"}
        with pytest.raises(InvalidInput, match="dimensions"):
            engine.knn(np.ones(8, dtype=np.float32), 10)


def test_attribute_space_pads_when_vocabulary_grows(tmp_path: Path) -> None:
    with EmbeddedEngine(tmp_path / "d") as engine:
        a = Document(id="a", vectors={"attributes": np.array([1, 0, 0, 0], np.float32)})
        a.models = {"attributes": "vocab@1"}
        engine.upsert([a])
        assert [h.id for h in engine.knn(np.array([1, 0, 0, 0, 0, 0]), 5, space="attributes")] == [
            "a"
        ]
        b = Document(id="b", vectors={"attributes": np.array([0, 0, 0, 0, 0, 1], np.float32)})
        b.models = {"attributes": "vocab@1"}
        engine.upsert([b])
        hits = engine.knn(np.array([0, 0, 0, 0, 0, 1.0]), 5, space="attributes")
        assert hits[0].id == "b" and hits[0].score == pytest.approx(1.0)
        assert engine.vectors(["a", "b"], space="attributes")["a"].shape == (4,)


@pytest.fixture(scope="module")
def small_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedEngine]:
    with EmbeddedEngine(tmp_path_factory.mktemp("small")) as engine:
        v = np.eye(4, dtype=np.float32)[0]
        engine.upsert([doc("p", v, "red (AND) t-shirt", "v", color="red")])
        yield engine


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=60))
def test_any_text_is_a_safe_query(small_engine: EmbeddedEngine, text: str) -> None:
    hits = small_engine.keyword_search(text, Term("color", "red"), limit=5)
    assert all(h.id == "p" for h in hits)


def test_keyword_index_rebuilds_when_a_crashed_writer_left_it_unusable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer killed mid-commit can leave files tantivy refuses to overwrite (seen: a stale
    ``.del`` file, "FileAlreadyExists"); the next sync rebuilds the derived index from SQLite."""
    from lookalike.engines.embedded import keyword

    rng = np.random.default_rng(3)
    with EmbeddedEngine(tmp_path) as engine:
        engine.upsert(
            [doc(f"a{i}", v, title=f"red dress {i}") for i, v in enumerate(unit_rows(rng, 5, 8))]
        )
        assert len(engine.keyword_search("dress")) == 5
        failures: list[int] = []

        def broken_replay(self: Any, index: Any, applied: int) -> int:
            failures.append(applied)
            raise ValueError('Failed to open file for write: FileAlreadyExists("x.8107.del")')

        monkeypatch.setattr(keyword.KeywordIndex, "_replay_locked", broken_replay)
        engine.upsert([doc("b0", unit_rows(rng, 1, 8)[0], title="blue dress")])
        found = {c.id for c in engine.keyword_search("dress")}
        assert failures and found == {"a0", "a1", "a2", "a3", "a4", "b0"}
        engine.delete(["a0"])
        assert "a0" not in {c.id for c in engine.keyword_search("dress")}


def test_queries_overlap_with_writes_in_one_process(tmp_path: Path) -> None:
    """kNN searches run outside the snapshot lock: threads querying while another thread
    writes, deletes and refreshes get no errors, only live ids, and exact answers after."""
    import threading

    rng = np.random.default_rng(8)
    n, dim = 1200, 32
    vecs = _clustered(rng, n, dim, 12)
    with EmbeddedEngine(tmp_path / "d", ann_threshold=300, ann_background=False) as engine:
        engine.upsert([doc(f"p{i:04d}", vecs[i], fp="v1") for i in range(n)])
        engine.knn(vecs[0], 5)  # builds the graph
        errors: list[BaseException] = []
        stop = threading.Event()

        def reader(seed: int) -> None:
            local = np.random.default_rng(seed)
            try:
                while not stop.is_set():
                    hits = engine.knn(vecs[local.integers(n)], 10)
                    assert len(hits) == 10 and all(h.id[0] in "pq" for h in hits)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=reader, args=(s,)) for s in range(3)]
        for t in threads:
            t.start()
        for round_ in range(15):  # changes, deletes and new products while they read
            fresh = _clustered(rng, 40, dim, 12)
            engine.upsert([doc(f"p{i:04d}", fresh[i % 40], fp=f"r{round_}") for i in range(40)])
            engine.upsert([doc(f"q{round_:02d}{i}", fresh[i], fp="v1") for i in range(10)])
            engine.delete([f"p{1000 + round_:04d}"])
            engine.refresh()
        stop.set()
        for t in threads:
            t.join()
        assert not errors, errors
        hits = engine.knn(vecs[1005], 50)
        assert "p1005" not in {h.id for h in hits}  # deleted while they read
        assert engine.knn(fresh[3], 1)[0].id in {"p0003", "q143"}  # the last write is seen


def test_a_version_1_data_dir_is_migrated_on_opening(tmp_path: Path) -> None:
    """Version 1 kept a PCA and provenance as meta rows (``pca:``, ``pca-tag:``,
    ``inferred:``): opening moves them to their tables and leaves meta without them."""
    import base64
    import hashlib
    import json
    import sqlite3

    from lookalike.engines.embedded.store import SCHEMA_VERSION
    from lookalike.errors import EngineError

    rng = np.random.default_rng(4)
    mean = rng.standard_normal(8).astype(np.float32)
    comps = np.linalg.qr(rng.standard_normal((8, 8)))[0][:3].astype(np.float32)
    old_tag = f"m@1+pca3-{hashlib.sha256(mean.tobytes() + comps.tobytes()).hexdigest()[:10]}"
    enc = lambda a: base64.b64encode(a.tobytes()).decode()  # noqa: E731
    old_pca = {
        "model": "m@1",
        "dim": 3,
        "explained": 0.7,
        "mean": enc(mean),
        "components": enc(comps),
    }
    with EmbeddedEngine(tmp_path / "data"):
        pass
    db = sqlite3.connect(tmp_path / "data" / "lookalike.db")
    with db:
        db.executemany(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
            [
                ("schema_version", "1"),
                ("pca:image", json.dumps(old_pca)),
                ("pca-tag:image", old_tag),
                ("inferred:p1", json.dumps({"color": {"value": "red", "source": "gapfill"}})),
                ("vocab", "[]"),
            ],
        )
    db.close()
    with EmbeddedEngine(tmp_path / "data") as engine:
        migrated = engine.projection("image")
        assert migrated is not None and migrated.tag == old_tag and migrated.kind == "pca"
        np.testing.assert_allclose(migrated.weights, comps)
        assert engine.provenance(["p1"]) == {"p1": {"color": {"value": "red", "source": "gapfill"}}}
        assert engine.get_meta("pca:image") is None and engine.get_meta("inferred:p1") is None
        assert engine.get_meta("pca-tag:image") is None and engine.get_meta("vocab") == "[]"
        assert engine.get_meta("schema_version") == str(SCHEMA_VERSION)
        engine.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    with pytest.raises(EngineError, match="upgrade"):
        EmbeddedEngine(tmp_path / "data")


def test_window_read_after_keyword_hits_has_each_ids_own_vector(tmp_path: Path) -> None:
    """The rows of the last keyword hits are reused for the window read that follows them
    (hits, then ids appended after them, including one unknown then and written since)."""
    rng = np.random.default_rng(21)
    vecs = unit_rows(rng, 60, 8)
    with EmbeddedEngine(tmp_path) as engine:
        engine.upsert(
            [doc(f"p{i}", vecs[i], title="red shoe" if i % 2 else "blue hat") for i in range(50)]
        )
        engine.refresh()
        hits = [c.id for c in engine.keyword_search("shoe", limit=10)]
        assert len(hits) == 10
        ids = [*hits, "p0", "late"]
        got = engine.vector_matrix(ids, "image")
        for pid, row in zip(ids[:-1], got[:-1], strict=True):
            np.testing.assert_allclose(row, vecs[int(pid[1:])], atol=1e-6)
        assert not got[-1].any()  # not written yet
        engine.upsert([doc("late", vecs[55], title="red shoe")])
        engine.refresh()
        hits_again = [c.id for c in engine.keyword_search("shoe", limit=10)]
        again = engine.vector_matrix([*hits_again, "p0", "late"], "image")
        np.testing.assert_allclose(again[-1], vecs[55], atol=1e-6)
        np.testing.assert_allclose(again[-2], vecs[0], atol=1e-6)
