"""Re-ranking pushed down into OpenSearch gives the page the Python re-ranker gives.

No cluster runs here, so a small evaluator answers ``_search`` the way the cluster would:
the first pass (k-NN by cosine, or a keyword score), then the ``rescore`` computed by the
line-by-line numpy copy of the Painless script (``painless_reference``). Every body still goes
through the spec-validating transport. The same engine with pushdown off re-scores in Python
(``reranker.scoring`` over ``_mget`` vectors); both must return the same page. Against a real
cluster (``OPENSEARCH_URL``) the contract and rescore suites run the cluster's own script.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("opensearchpy", reason="install the opensearch extra")

from lookalike.engines.opensearch import OpenSearchEngine  # noqa: E402
from reranker import RerankRequest, run  # noqa: E402
from reranker.request import Anchor  # noqa: E402
from tests.opensearch_fake import MiniCluster, fake_client  # noqa: E402
from tests.test_engine_contract import make_doc  # noqa: E402
from tests.test_opensearch_rescore import painless_reference  # noqa: E402

Json = dict[str, Any]
COLORS = ("Red", "Blue", "Green")


def _excluded(clause: Json) -> set[str]:
    ids: set[str] = set()
    for item in clause.get("bool", {}).get("must_not", []):
        ids.update(item.get("ids", {}).get("values", []))
    return ids


def evaluator(cluster: MiniCluster) -> Any:
    """``search_hits`` for the fake: first pass, then the rescore, as the cluster does."""

    def first_pass(name: str, query: Json) -> list[tuple[str, float]]:
        docs = {pid: src for pid, (_, src) in cluster.docs(name).items()}
        if "knn" in query:
            ((field, knn),) = query["knn"].items()
            vec = np.asarray(knn["vector"])
            skip = _excluded(knn.get("filter", {}))
            scored = [
                (pid, (1 + float(np.dot(vec, src[field]))) / 2)  # Lucene cosinesimil
                for pid, src in docs.items()
                if pid not in skip and src.get(field) is not None
            ]
            return sorted(scored, key=lambda h: (-h[1], h[0]))[: knn["k"]]
        text = query["bool"]["must"][0]["multi_match"]["query"].lower().split()
        skip = _excluded(query)
        scored = [  # a stand-in for BM25: how often the words occur in the title, plus 1
            (pid, 1.0 + sum(src["title"].lower().split().count(w) for w in text))
            for pid, src in docs.items()
            if pid not in skip
        ]
        return sorted(scored, key=lambda h: (-h[1], h[0]))

    def answer(name: str, body: Json) -> list[Json]:
        hits = first_pass(name, body["query"])
        if "rescore" in body:
            (clause,) = body["rescore"]
            window = hits[: clause["window_size"]]
            script = clause["query"]["rescore_query"]["script_score"]["script"]
            docs = cluster.docs(name)
            vectors = [
                {k: np.asarray(v) for k, v in docs[pid][1].items() if k.startswith("vec_")}
                for pid, _ in window
            ]
            extra = painless_reference(script["params"], vectors)
            weight = clause["query"]["query_weight"]
            hits = sorted(
                ((pid, weight * s + float(x)) for (pid, s), x in zip(window, extra, strict=True)),
                key=lambda h: (-h[1], h[0]),
            )
        index = cluster.resolve(name)[0]
        return [{"_index": index, "_id": pid, "_score": score} for pid, score in hits]

    return answer


@pytest.fixture
def cluster() -> MiniCluster:
    cluster = MiniCluster()
    cluster.search_hits = evaluator(cluster)
    return cluster


@pytest.fixture
def engines(cluster: MiniCluster) -> tuple[OpenSearchEngine, OpenSearchEngine]:
    """The same cluster seen with pushdown on and off."""
    pushed = OpenSearchEngine(client=fake_client(cluster), initial_backoff=0)
    python = OpenSearchEngine(client=fake_client(cluster), initial_backoff=0, pushdown=False)
    rng = np.random.default_rng(5)
    words = ("shirt", "dress", "blue", "linen")
    docs = [
        make_doc(
            f"p{i:02d}",
            rng,
            n_images=1 + i % 3,
            title=" ".join(rng.choice(words, size=3)),
            color=COLORS[i % 3],
        )
        for i in range(40)
    ]
    pushed.upsert(docs)
    pushed.refresh()
    return pushed, python


REQUESTS = {
    "more like this": dict(anchors=(Anchor("p00"),)),
    "weighted anchors and a negative, average": dict(
        anchors=(Anchor("p01", 2.0), Anchor("p02")), negatives=(Anchor("p03"),)
    ),
    "max": dict(anchors=(Anchor("p01"), Anchor("p04", 3.0)), aggregation="max"),
    "min": dict(anchors=(Anchor("p01"), Anchor("p04")), aggregation="min"),
    "sum with text weight": dict(
        anchors=(Anchor("p05"), Anchor("p06")), aggregation="sum", weights={"text": 0.8}
    ),
    "keyword blended": dict(query="blue shirt", anchors=(Anchor("p07"),), weights={"keyword": 0.5}),
    "keyword, second page": dict(query="linen", anchors=(Anchor("p08"),), offset=5),
    "small window": dict(anchors=(Anchor("p09"),), window=12),
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_pushdown_page_equals_python_page(
    engines: tuple[OpenSearchEngine, OpenSearchEngine], cluster: MiniCluster, name: str
) -> None:
    pushed, python = engines
    req = RerankRequest(k=8, **REQUESTS[name])  # type: ignore[arg-type]
    before = len(cluster.requests)
    got = run(pushed, req)
    sent = [body for _, path, _, body in cluster.requests[before:] if path.endswith("_search")]
    assert any("rescore" in body for body in sent), "the page was not re-scored in the cluster"
    want = run(python, req)
    assert [h.id for h in got.hits] == [h.id for h in want.hits]
    np.testing.assert_allclose([h.score for h in got.hits], [h.score for h in want.hits], atol=1e-4)
    assert got.total == want.total
    assert got.anchors == want.anchors


def test_query_vector_is_an_anchor_in_the_cluster(
    engines: tuple[OpenSearchEngine, OpenSearchEngine],
) -> None:
    pushed, python = engines
    vec = python.vectors(["p11"])["p11"]
    req = RerankRequest(query_vectors={"image": vec}, k=5)
    got, want = run(pushed, req), run(python, req)
    assert [h.id for h in got.hits] == [h.id for h in want.hits]
    assert got.hits[0].id == "p11"  # its own vector is the nearest


@pytest.mark.parametrize(
    "options", [dict(explain=True), dict(keyword_norm="rank", query="shirt")], ids=str
)
def test_requests_the_script_cannot_answer_stay_in_python(
    engines: tuple[OpenSearchEngine, OpenSearchEngine], cluster: MiniCluster, options: Json
) -> None:
    pushed, python = engines
    req = RerankRequest(anchors=(Anchor("p00"),), k=5, **options)  # type: ignore[arg-type]
    before = len(cluster.requests)
    got = run(pushed, req)
    sent = [body for _, path, _, body in cluster.requests[before:] if path.endswith("_search")]
    assert sent and not any("rescore" in body for body in sent)
    assert [h.id for h in got.hits] == [h.id for h in run(python, req).hits]
