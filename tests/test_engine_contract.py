"""The engine contract, run against every backend through lookalike.engines.base.Engine only.

Backends join by adding a factory to ``FACTORIES``; every test gets a fresh, empty engine.
Writes are followed by ``engine.refresh()`` so backends with refresh intervals pass too.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lookalike.documents import Candidate, Document, ImageEntry
from lookalike.engines.base import Engine, UpsertResult
from lookalike.errors import InvalidInput, LookalikeError
from lookalike.filters import And, Filter, Not, Or, Range, Term, Terms, matches
from lookalike.projections import Projection, ProjectionMismatch

DIM = 16
IMAGE_MODEL = "img-test@1"
TEXT_MODEL = "txt-test@1"


def _embedded(path: Path) -> Engine:
    from lookalike.engines.embedded import EmbeddedEngine

    return EmbeddedEngine(path / "data")


def _opensearch(path: Path) -> Engine:
    """The live node (``make test`` starts it), every request checked against the spec."""
    pytest.importorskip("opensearchpy")
    from lookalike.engines.opensearch import OpenSearchEngine
    from tests.opensearch_live import live_client, unique_prefix

    return OpenSearchEngine(client=live_client(), prefix=unique_prefix(), drop_on_close=True)


FACTORIES: dict[str, Callable[[Path], Engine]] = {
    "embedded": _embedded,
    "opensearch": _opensearch,
}


@pytest.fixture(params=sorted(FACTORIES))
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    eng = FACTORIES[request.param](tmp_path)
    try:
        yield eng
    finally:
        eng.close()


def unit(rng: np.random.Generator, dim: int = DIM) -> np.ndarray:
    v = rng.standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def vec_of(image: ImageEntry) -> np.ndarray:
    assert image.vector is not None
    return image.vector


def make_doc(pid: str, rng: np.random.Generator, n_images: int = 2, **fields: object) -> Document:
    images = [
        ImageEntry(i, f"https://img.example/{pid}/{i}.jpg", f"hash-{pid}-{i}", unit(rng))
        for i in range(n_images)
    ]
    doc = Document(
        id=pid,
        images=images,
        vectors={"text": unit(rng, 8)},
        models={"image": IMAGE_MODEL, "text": TEXT_MODEL},
        fingerprint=f"fp-{pid}-{rng.integers(1 << 30)}",
    )
    for key, value in fields.items():
        setattr(doc, key, value)
    return doc


# -- writes and reads ---------------------------------------------------------------------------
def test_upsert_get_round_trip(engine: Engine) -> None:
    rng = np.random.default_rng(1)
    doc = make_doc(
        "p1",
        rng,
        title="Linen summer dress",
        description="Light and airy",
        brand="Acme",
        category="Dresses",
        color="Sky Blue",
        price=49.5,
        attributes={"material": ["linen"], "size": ["S", "M"]},
    )
    doc.images.append(ImageEntry(2, "https://img.example/broken.jpg", None, None, "timeout"))
    assert engine.upsert([doc]) == UpsertResult(inserted=1)
    engine.refresh()
    got = engine.get(["p1", "missing"])
    assert set(got) == {"p1"}
    p = got["p1"]
    assert (p.title, p.description, p.brand, p.category, p.color, p.price) == (
        "Linen summer dress",
        "Light and airy",
        "Acme",
        "Dresses",
        "Sky Blue",
        49.5,
    )
    assert p.attributes == {"material": ["linen"], "size": ["S", "M"]}
    assert [(i.position, i.uri, i.hash, i.error) for i in p.images] == [
        (0, "https://img.example/p1/0.jpg", "hash-p1-0", None),
        (1, "https://img.example/p1/1.jpg", "hash-p1-1", None),
        (2, "https://img.example/broken.jpg", None, "timeout"),
    ]
    assert p.models == {"image": IMAGE_MODEL, "text": TEXT_MODEL}
    assert p.revision == 1 and p.updated_at > 0
    assert engine.fingerprints(["p1", "missing"]) == {"p1": doc.fingerprint}
    assert engine.all_ids() == ["p1"]


def test_reupsert_same_fingerprint_changes_nothing(engine: Engine) -> None:
    rng = np.random.default_rng(2)
    docs = [make_doc(f"p{i}", rng, title=f"item {i}") for i in range(5)]
    assert engine.upsert(docs) == UpsertResult(inserted=5)
    before = engine.get([d.id for d in docs])
    assert engine.upsert(docs) == UpsertResult(unchanged=5)
    after = engine.get([d.id for d in docs])
    assert {k: (v.revision, v.updated_at) for k, v in before.items()} == {
        k: (v.revision, v.updated_at) for k, v in after.items()
    }


def test_upsert_without_fingerprint_hashes_the_content(engine: Engine) -> None:
    """No fingerprint given: the engine hashes the content, so an identical document is
    unchanged and an edited one is written (the engines once disagreed here)."""
    rng = np.random.default_rng(21)
    doc = make_doc("p1", rng, title="first")
    doc.fingerprint = ""
    assert engine.upsert([doc]) == UpsertResult(inserted=1)
    assert engine.upsert([doc]) == UpsertResult(unchanged=1)
    doc.title = "second"
    assert engine.upsert([doc]) == UpsertResult(updated=1)
    got = engine.get(["p1"])["p1"]
    assert (got.title, got.revision) == ("second", 2)
    assert engine.fingerprints(["p1"])["p1"] == doc.content_fingerprint()


def test_update_bumps_revision(engine: Engine) -> None:
    rng = np.random.default_rng(3)
    doc = make_doc("p1", rng, title="old title")
    other = make_doc("p2", rng, title="untouched")
    engine.upsert([doc, other])
    doc.title, doc.fingerprint = "new title", "fp-new"
    assert engine.upsert([doc, other]) == UpsertResult(updated=1, unchanged=1)
    got = engine.get(["p1", "p2"])
    assert (got["p1"].title, got["p1"].revision) == ("new title", 2)
    assert got["p2"].revision == 1


def test_delete(engine: Engine) -> None:
    rng = np.random.default_rng(4)
    docs = [make_doc(f"p{i}", rng, title="red shoe", color="red") for i in range(3)]
    engine.upsert(docs)
    engine.refresh()
    assert engine.count() == 3
    assert engine.delete(["p1", "nope"]) == 1
    assert engine.delete(["p1"]) == 0
    engine.refresh()
    assert engine.get(["p1"]) == {}
    assert engine.fingerprints(["p1"]) == {}
    assert engine.all_ids() == ["p0", "p2"]
    assert engine.count() == 2 and engine.count(Term("color", "red")) == 2
    assert "p1" not in {c.id for c in engine.keyword_search("shoe")}
    assert "p1" not in {c.id for c in engine.knn(vec_of(docs[1].images[0]), 10)}
    assert engine.vectors(["p1"]) == {} and engine.image_vectors(["p1"]) == {}
    assert engine.upsert([docs[1]]) == UpsertResult(inserted=1)
    engine.refresh()
    assert engine.count() == 3


def test_batch_is_all_or_nothing(engine: Engine) -> None:
    rng = np.random.default_rng(5)
    good = make_doc("good", rng)
    bad = make_doc("bad", rng)
    bad.vectors["text"] = np.full(8, np.nan, dtype=np.float32)
    with pytest.raises(LookalikeError):
        engine.upsert([good, bad])
    engine.refresh()
    assert engine.get(["good", "bad"]) == {}
    assert engine.count() == 0


# -- keyword search -----------------------------------------------------------------------------
def test_keyword_title_match_ranks_first(engine: Engine) -> None:
    rng = np.random.default_rng(6)
    engine.upsert(
        [
            make_doc("a", rng, title="Leather ankle boot", description="a sturdy boot"),
            make_doc("b", rng, title="Canvas sneaker", description="goes with any boot"),
            make_doc("c", rng, title="Wool scarf", description="warm"),
        ]
    )
    engine.refresh()
    hits = engine.keyword_search("boot")
    assert [h.id for h in hits][:2] == ["a", "b"]
    assert hits[0].score > hits[1].score > 0
    assert engine.keyword_search("boot", limit=1) == hits[:1]
    assert engine.keyword_search("scarf", Term("color", "nope")) == []


HOSTILE = [
    "men's shoes",
    "t-shirt",
    "-red",
    "color:red",
    '"',
    "AND",
    "OR NOT",
    "(",
    ")",
    "NEAR(",
    "title:boot",
    "price:[1 TO 2]",
    "boot~2",
    "bo*t",
    "/regex/",
    "\\",
    "",
    "   ",
    "ünïcödé ☃ 日本語 👗",
    "a" * 300,
    "\x00\x01",
]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_never_raise(engine: Engine, query: str) -> None:
    rng = np.random.default_rng(7)
    engine.upsert([make_doc("p", rng, title="Men's red T-shirt boot", color="red")])
    engine.refresh()
    for flt in (None, Term("color", "red"), Not(Term("color", query or "x"))):
        hits = engine.keyword_search(query, flt, limit=10)
        assert all(isinstance(h, Candidate) for h in hits)
    if query in ("men's shoes", "t-shirt", "title:boot"):
        assert [h.id for h in engine.keyword_search(query)] == ["p"]


def test_no_query_lists_filtered_set_in_stable_order(engine: Engine) -> None:
    rng = np.random.default_rng(8)
    engine.upsert([make_doc(f"p{i}", rng, color="red" if i % 2 else "blue") for i in range(20)])
    engine.refresh()
    first = engine.keyword_search(None, Term("color", "RED"), limit=100)
    assert {h.id for h in first} == {f"p{i}" for i in range(1, 20, 2)}
    assert all(h.score == 0 for h in first)
    assert engine.keyword_search(None, Term("color", "red"), limit=100) == first
    assert engine.keyword_search("", Term("color", "red"), limit=3) == first[:3]
    assert len(engine.keyword_search(None, limit=1000)) == 20


# -- filters against the reference evaluator ------------------------------------------------------
BRANDS = ["Acme", "Globex", "Initech", "Umbrella"]
COLORS = ["red", "Navy Blue", "green", "black", "white"]
CATEGORIES = ["shoes", "dresses", "bags"]
MATERIALS = ["cotton", "linen", "Wool", "silk"]


def random_catalogue(n: int, seed: int) -> list[Document]:
    rnd = random.Random(seed)
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        attrs = {}
        if rnd.random() < 0.7:
            attrs["material"] = rnd.sample(MATERIALS, rnd.randint(1, 2))
        docs.append(
            make_doc(
                f"p{i:03d}",
                rng,
                n_images=1,
                title=f"{rnd.choice(COLORS)} {rnd.choice(CATEGORIES)} number {i}",
                brand=rnd.choice(BRANDS) if rnd.random() < 0.9 else None,
                category=rnd.choice(CATEGORIES),
                color=rnd.choice(COLORS),
                price=round(rnd.uniform(5, 200), 2) if rnd.random() < 0.85 else None,
                attributes=attrs,
            )
        )
    return docs


def _value(values: list[str]) -> st.SearchStrategy[str]:
    cased = st.sampled_from(values).flatmap(
        lambda v: st.sampled_from([v, v.upper(), f"  {v.lower()} "])
    )
    return st.one_of(cased, st.just("missing value"))


_fields = {
    "brand": BRANDS,
    "color": COLORS,
    "category": CATEGORIES,
    "attributes.material": MATERIALS,
}
_leaf = st.one_of(
    st.sampled_from(sorted(_fields)).flatmap(
        lambda f: _value(_fields[f]).map(lambda v: Term(f, v))
    ),
    st.sampled_from(sorted(_fields)).flatmap(
        lambda f: st.lists(_value(_fields[f]), min_size=1, max_size=3).map(
            lambda vs: Terms(f, tuple(vs))
        )
    ),
    st.builds(
        lambda lo, hi, strict: Range("price", gt=lo, lt=hi) if strict else Range("price", lo, hi),
        st.one_of(st.none(), st.floats(0, 200)),
        st.one_of(st.none(), st.floats(0, 200)),
        st.booleans(),
    ),
)
filters_st: st.SearchStrategy[Filter] = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: Or(tuple(xs))),
        inner.map(Not),
    ),
    max_leaves=6,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(flt=filters_st)
def test_filters_match_reference(engine: Engine, flt: Filter) -> None:
    docs = random_catalogue(120, seed=11)
    if engine.count() == 0:
        engine.upsert(docs)
        engine.refresh()
    expected = {d.id for d in docs if matches(flt, d.keyword_terms(), d.price)}
    assert engine.count(flt) == len(expected)
    assert {c.id for c in engine.keyword_search(None, flt, limit=1000)} == expected
    query = docs[0].images[0].vector
    assert query is not None
    assert {c.id for c in engine.knn(query, 1000, filters=flt)} == expected


# -- vectors ---------------------------------------------------------------------------------
def test_knn_exact_cosine_order(engine: Engine) -> None:
    rng = np.random.default_rng(12)
    docs = [make_doc(f"p{i:02d}", rng, n_images=3) for i in range(60)]
    engine.upsert(docs)
    engine.refresh()
    product_vecs = {}
    for d in docs:
        mean = np.mean([vec_of(i) for i in d.images], axis=0)
        product_vecs[d.id] = mean / np.linalg.norm(mean)
    stored = engine.vectors([d.id for d in docs])
    for pid, vec in product_vecs.items():
        np.testing.assert_allclose(stored[pid], vec, atol=1e-5)
    for _ in range(5):
        q = rng.standard_normal(DIM).astype(np.float32)
        ref = sorted(
            ((float(v @ (q / np.linalg.norm(q))), pid) for pid, v in product_vecs.items()),
            reverse=True,
        )[:10]
        hits = engine.knn(q, 10)
        assert [h.id for h in hits] == [pid for _, pid in ref]
        np.testing.assert_allclose([h.score for h in hits], [s for s, _ in ref], atol=1e-5)


def test_knn_with_filters_and_exclude(engine: Engine) -> None:
    rng = np.random.default_rng(13)
    docs = [
        make_doc(f"p{i:02d}", rng, color="red" if i % 3 == 0 else "blue", price=float(i))
        for i in range(30)
    ]
    engine.upsert(docs)
    engine.refresh()
    q = docs[0].images[0].vector
    assert q is not None
    flt = And((Term("color", "red"), Range("price", gte=3)))
    hits = engine.knn(q, 5, filters=flt, exclude=["p03", "p06", "unknown"])
    allowed = {d.id for d in docs if d.color == "red" and (d.price or 0) >= 3} - {"p03", "p06"}
    vecs = engine.vectors(sorted(allowed))
    ref = sorted(allowed, key=lambda pid: -float(vecs[pid] @ q))[:5]
    assert [h.id for h in hits] == ref
    assert engine.knn(q, 5, filters=Term("color", "green")) == []
    assert engine.knn(q, 0) == []


def test_text_space_vectors(engine: Engine) -> None:
    rng = np.random.default_rng(14)
    docs = [make_doc(f"p{i}", rng) for i in range(4)]
    engine.upsert(docs)
    engine.refresh()
    got = engine.vectors(["p0", "p3", "nope"], space="text")
    assert set(got) == {"p0", "p3"}
    np.testing.assert_allclose(got["p3"], docs[3].vectors["text"], atol=1e-6)
    hits = engine.knn(docs[2].vectors["text"], 1, space="text")
    assert hits[0].id == "p2" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert engine.knn(docs[2].vectors["text"], 3, space="no-such-space") == []


def test_vector_matrix_follows_writes_between_equal_reads(engine: Engine) -> None:
    """The same ids read again after a write (the embedded engine remembers the rows of the
    last ids it read) show the new product, the changed vector and the deletion."""
    rng = np.random.default_rng(15)
    docs = [make_doc(f"p{i}", rng) for i in range(3)]
    engine.upsert(docs[:2])
    engine.refresh()
    ids = ["p0", "p1", "p2"]
    first = engine.vector_matrix(ids, "text")
    assert first.shape[0] == 3 and not first[2].any()  # p2 not written yet
    np.testing.assert_allclose(
        engine.vector_matrix(ids, "text")[0], docs[0].vectors["text"], atol=1e-6
    )
    changed = make_doc("p0", rng)
    engine.upsert([changed, docs[2]])
    engine.delete(["p1"])
    engine.refresh()
    again = engine.vector_matrix(ids, "text")
    np.testing.assert_allclose(again[0], changed.vectors["text"], atol=1e-6)
    assert not again[1].any()
    np.testing.assert_allclose(again[2], docs[2].vectors["text"], atol=1e-6)


def test_image_vectors_are_per_image_sets(engine: Engine) -> None:
    rng = np.random.default_rng(15)
    a = make_doc("a", rng, n_images=3)
    b = make_doc("b", rng, n_images=1)
    b.images.append(ImageEntry(1, "https://img.example/b/broken.jpg", "hash-broken", None, "404"))
    c = make_doc("c", rng, n_images=0)
    engine.upsert([a, b, c])
    engine.refresh()
    got = engine.image_vectors(["a", "b", "c", "zzz"])
    assert set(got) == {"a", "b"}
    assert got["a"].shape == (3, DIM) and got["b"].shape == (1, DIM)
    np.testing.assert_allclose(got["a"], np.stack([vec_of(i) for i in a.images]), atol=1e-6)


def test_cached_image_vectors(engine: Engine) -> None:
    rng = np.random.default_rng(16)
    doc = make_doc("p", rng, n_images=2)
    engine.upsert([doc])
    got = engine.cached_image_vectors(["hash-p-0", "hash-p-1", "unknown"], IMAGE_MODEL)
    assert set(got) == {"hash-p-0", "hash-p-1"}
    np.testing.assert_allclose(got["hash-p-1"], vec_of(doc.images[1]), atol=1e-6)
    assert engine.cached_image_vectors(["hash-p-0"], "other-model@1") == {}
    engine.delete(["p"])  # the cache outlives products: the image need not be embedded again
    assert set(engine.cached_image_vectors(["hash-p-0"], IMAGE_MODEL)) == {"hash-p-0"}


def test_colour_vectors_per_image_and_product(engine: Engine) -> None:
    """The `color` space: per-image colour vectors cached by hash under the colour model's tag,
    the product's colour vector stored and searched like any product-level space."""
    rng = np.random.default_rng(17)
    docs = []
    for pid in ("p", "q"):
        doc = make_doc(pid, rng, n_images=2)
        for image in doc.images:
            image.color = unit(rng, 12)
        doc.vectors["color"] = unit(rng, 12)
        doc.models["color"] = "colour-test@1"
        docs.append(doc)
    engine.upsert(docs)
    got = engine.cached_image_vectors(["hash-p-0", "hash-p-1"], "colour-test@1")
    assert set(got) == {"hash-p-0", "hash-p-1"}
    np.testing.assert_allclose(got["hash-p-1"], docs[0].images[1].color, atol=1e-6)
    stored = engine.vectors(["p", "q"], "color")
    np.testing.assert_allclose(stored["q"], docs[1].vectors["color"], atol=1e-6)
    engine.refresh()
    assert [c.id for c in engine.knn(docs[1].vectors["color"], 1, space="color")] == ["q"]


def test_meta_round_trip(engine: Engine) -> None:
    assert engine.get_meta("vocab") is None
    engine.set_meta("vocab", '{"a": 1}')
    engine.set_meta("vocab", '{"a": 2}')
    assert engine.get_meta("vocab") == '{"a": 2}'


# -- projections -----------------------------------------------------------------------------
def _projection_catalogue(engine: Engine, n: int = 40) -> list[Document]:
    rng = np.random.default_rng(11)
    docs = [make_doc(f"p{i:02d}", rng, color="red" if i % 2 else "blue") for i in range(n)]
    engine.upsert(docs)
    engine.refresh()
    return docs


def _head(source: str, space: str, model: str, dim: int = 6, seed: int = 5) -> Projection:
    rng = np.random.default_rng(seed)
    return Projection(
        kind="head",
        source=source,
        space=space,
        model=model,
        weights=rng.standard_normal((dim, DIM)).astype(np.float32),
        bias=rng.standard_normal(dim).astype(np.float32) * 0.1,
    )


def test_space_models(engine: Engine) -> None:
    _projection_catalogue(engine, 3)
    assert engine.space_models() == {"image": IMAGE_MODEL, "text": TEXT_MODEL}


def test_a_pca_serves_its_space_reduced_everywhere(engine: Engine) -> None:
    from lookalike import pca

    _projection_catalogue(engine)
    ids = engine.all_ids()
    full = engine.vectors(ids)
    fitted = pca.fit_engine(engine, "image", 4)
    engine.refresh()
    assert fitted.model == IMAGE_MODEL and engine.projection("image") is not None
    assert engine.projection("image").tag == fitted.tag  # type: ignore[union-attr]
    assert set(engine.projections()) == {"image"}
    served = engine.vectors(ids)
    assert served.keys() == full.keys()
    for pid in ids:  # every product, as fitted (stored vectors are kept full)
        np.testing.assert_allclose(served[pid], fitted.reduce(full[pid])[0], atol=1e-5)
    stored = engine.stored_vectors(ids[:3], "image", IMAGE_MODEL)
    np.testing.assert_allclose(stored[ids[0]], full[ids[0]], atol=1e-6)
    # k-NN over the reduced vectors, with a raw query vector reduced on the way in
    query = full["p03"]
    matrix = np.stack([served[p] for p in ids])
    expected = [ids[i] for i in np.argsort(-(matrix @ served["p03"]))[:5]]
    assert [c.id for c in engine.knn(query, 5)] == expected
    assert [c.id for c in engine.knn(served["p03"], 5)] == expected
    np.testing.assert_allclose(engine.serving_vector("image", query), served["p03"], atol=1e-5)
    # a product written after the fit is served reduced too
    late = make_doc("late", np.random.default_rng(99))
    engine.upsert([late])
    engine.refresh()
    late_full = engine.stored_vectors(["late"], "image", IMAGE_MODEL)["late"]
    np.testing.assert_allclose(
        engine.vectors(["late"])["late"], fitted.reduce(late_full)[0], atol=1e-5
    )
    assert engine.drop_projection("image") and not engine.drop_projection("image")
    engine.refresh()
    assert engine.projection("image") is None
    np.testing.assert_allclose(engine.vectors(["p03"])["p03"], full["p03"], atol=1e-6)


def test_a_derived_space_is_served_from_its_source(engine: Engine) -> None:
    _projection_catalogue(engine)
    ids = engine.all_ids()
    full = engine.vectors(ids)
    head = _head("image", "tuned", IMAGE_MODEL)
    engine.set_projection(head)
    engine.refresh()
    tuned = engine.vectors(ids, "tuned")
    assert tuned.keys() == full.keys() and tuned[ids[0]].shape == (6,)
    np.testing.assert_allclose(tuned["p07"], head.apply(full["p07"])[0], atol=1e-5)
    assert engine.vectors(["p07"])["p07"].shape == (DIM,)  # the source is served as it was
    assert engine.stored_vectors(ids, "tuned", IMAGE_MODEL) == {}
    matrix = np.stack([tuned[p] for p in ids])
    reds = [p for p in ids if int(p[1:]) % 2]
    scores = {p: float(tuned[p] @ tuned["p07"]) for p in reds if p != "p07"}
    expected = sorted(scores, key=lambda p: -scores[p])[:4]
    got = engine.knn(full["p07"], 4, filters=Term("color", "red"), exclude=["p07"], space="tuned")
    assert [c.id for c in got] == expected
    assert matrix.shape == (len(ids), 6)
    assert engine.drop_projection("tuned")
    engine.refresh()
    assert (
        engine.vectors(ids[:2], "tuned") == {} and engine.knn(full["p07"], 3, space="tuned") == []
    )


def test_a_non_linear_derived_space_is_served_everywhere(engine: Engine) -> None:
    """A head with a ReLU hidden layer: stored rows, later writes and raw queries all go
    through it, and its k-NN ranks by the cosines of the non-linear map."""
    _projection_catalogue(engine)
    ids = engine.all_ids()
    full = engine.vectors(ids)
    rng = np.random.default_rng(8)
    head = Projection(
        kind="head",
        source="image",
        space="tuned",
        model=IMAGE_MODEL,
        mean=np.mean([full[p] for p in ids], axis=0),
        hidden_weights=rng.standard_normal((12, DIM)),
        hidden_bias=rng.standard_normal(12) * 0.1,
        weights=rng.standard_normal((6, 12)),
        bias=rng.standard_normal(6) * 0.1,
    )
    engine.set_projection(head)
    engine.refresh()
    assert engine.projection("tuned").hidden == 12  # type: ignore[union-attr]
    tuned = engine.vectors(ids, "tuned")
    for pid in ids:
        np.testing.assert_allclose(tuned[pid], head.apply(full[pid])[0], atol=1e-5)
    affine = Projection(**{**_affine_part(head), "weights": head.weights @ head.hidden_weights})
    assert not np.allclose(tuned["p07"], affine.apply(full["p07"])[0], atol=1e-3)
    scores = {p: float(tuned[p] @ tuned["p07"]) for p in ids if p != "p07"}
    expected = sorted(scores, key=lambda p: -scores[p])[:5]
    assert [c.id for c in engine.knn(full["p07"], 5, exclude=["p07"], space="tuned")] == expected
    assert [c.id for c in engine.knn(tuned["p07"], 5, exclude=["p07"], space="tuned")] == expected
    late = make_doc("late", np.random.default_rng(98))
    engine.upsert([late])
    engine.refresh()
    late_full = engine.stored_vectors(["late"], "image", IMAGE_MODEL)["late"]
    np.testing.assert_allclose(
        engine.vectors(["late"], "tuned")["late"], head.apply(late_full)[0], atol=1e-5
    )


def _affine_part(p: Projection) -> dict[str, object]:
    return {
        "kind": p.kind,
        "source": p.source,
        "space": p.space,
        "model": p.model,
        "mean": p.mean,
        "bias": p.bias,
    }


def test_projections_of_another_model_or_unknown_space_are_refused(engine: Engine) -> None:
    _projection_catalogue(engine, 12)
    with pytest.raises(ProjectionMismatch, match="fit it again"):
        engine.set_projection(_head("image", "tuned", "other-model@2"))
    with pytest.raises(InvalidInput, match="no vectors"):
        engine.set_projection(_head("nothing", "tuned", IMAGE_MODEL))
    with pytest.raises(InvalidInput, match="holds stored vectors"):
        engine.set_projection(_head("image", "text", IMAGE_MODEL))
    assert engine.projections() == {}
    assert engine.vectors(["p01"], "tuned") == {}


def test_a_derived_space_refuses_vectors_of_a_new_model(engine: Engine) -> None:
    docs = _projection_catalogue(engine, 12)
    engine.set_projection(_head("image", "tuned", IMAGE_MODEL))
    engine.refresh()
    assert len(engine.vectors(["p01", "p02"], "tuned")) == 2
    rng = np.random.default_rng(3)
    for doc in docs:  # re-indexed with a new image model
        doc.models["image"] = "img-test@2"
        doc.fingerprint = f"new-{doc.id}"
        for image in doc.images:
            image.vector = unit(rng)
    engine.upsert(docs)
    engine.refresh()
    with pytest.raises(ProjectionMismatch, match="fit it again"):
        engine.vectors(["p01", "p02"] * 20, "tuned")
    with pytest.raises(ProjectionMismatch):
        engine.knn(unit(rng), 3, space="tuned")


# -- provenance of inferred values ------------------------------------------------------------
def test_provenance_round_trip(engine: Engine) -> None:
    rng = np.random.default_rng(2)
    engine.upsert([make_doc(f"p{i}", rng) for i in range(3)])
    assert engine.provenance(["p0", "p1"]) == {}
    engine.record_provenance(
        {
            "p0": {"color": {"value": "red", "source": "gapfill", "confidence": 0.8}},
            "p1": {"usage": {"value": "party", "source": "cluster"}},
        }
    )
    engine.record_provenance({"p0": {"usage": {"value": "work", "source": "manual"}}})
    engine.record_provenance({"p0": {"color": {"value": "blue", "source": "manual"}}})
    got = engine.provenance(["p0", "p1", "p2", "unknown"])
    assert got == {
        "p0": {
            "color": {"value": "blue", "source": "manual"},  # replaced whole, not merged
            "usage": {"value": "work", "source": "manual"},
        },
        "p1": {"usage": {"value": "party", "source": "cluster"}},
    }
    assert engine.delete_provenance(["p0"], ["color"]) == 1
    assert engine.provenance(["p0"]) == {"p0": {"usage": {"value": "work", "source": "manual"}}}
    assert engine.delete_provenance(["p1", "p2"]) == 1
    assert engine.provenance(["p1"]) == {}
    engine.delete(["p0"])  # a deleted product's provenance goes with it
    engine.refresh()
    assert engine.provenance(["p0"]) == {}
    assert engine.get_meta("inferred:p0") is None  # not a meta row


def test_projections_outlive_a_blue_green_rebuild(engine: Engine) -> None:
    docs = _projection_catalogue(engine, 10)
    head = _head("image", "tuned", IMAGE_MODEL)
    engine.set_projection(head)
    green = engine.begin_rebuild({"image": IMAGE_MODEL, "text": TEXT_MODEL})
    try:
        assert set(green.projections()) == {"tuned"}
        green.upsert(docs)  # the same model: served through the projection at once
        green.refresh()
        full = green.stored_vectors(["p03"], "image", IMAGE_MODEL)["p03"]
        got = green.vectors(["p03"], "tuned")["p03"]
        np.testing.assert_allclose(got, head.apply(full)[0], atol=1e-5)
    finally:
        green.close()
