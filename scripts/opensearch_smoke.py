"""Smoke check of a local OpenSearch node: what Lookalike needs from it, end to end.

Standard library only (it runs before the project is installed). Checks a knn_vector index
(lucene, cosine), a filtered knn query, a Painless script_score with k-NN's cosineSimilarity and
_analyze with the project's analyzer (from mappings/products.json). Exits 1 on the first failure.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
import uuid


def call(url: str, method: str, path: str, body: object | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"smoke: {method} {path} -> {exc.code}: {exc.read()[:500]!r}") from exc


def check(ok: bool, what: str) -> None:
    if not ok:
        raise SystemExit(f"smoke: FAILED {what}")
    print(f"smoke: ok   {what}", file=sys.stderr)


def main(url: str, mapping_path: str) -> None:
    with open(mapping_path) as fh:
        analysis = json.load(fh)["settings"]["index"]["analysis"]
    index = f"lookalike-smoke-{uuid.uuid4().hex[:8]}"
    settings = {"index": {"knn": True, "number_of_shards": 1, "number_of_replicas": 0}}
    settings["index"]["analysis"] = analysis
    vector = {
        "type": "knn_vector",
        "dimension": 3,
        "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"},
    }
    props = {
        "v": vector,
        "c": {"type": "keyword"},
        "t": {"type": "text", "analyzer": "lookalike_text"},
    }
    call(url, "PUT", f"/{index}", {"settings": settings, "mappings": {"properties": props}})
    try:
        docs = {
            "1": ([1.0, 0.0, 0.0], "a"),
            "2": ([0.9, 0.1, 0.0], "b"),
            "3": ([0.0, 1.0, 0.0], "b"),
        }
        for doc_id, (v, c) in docs.items():
            call(url, "PUT", f"/{index}/_doc/{doc_id}", {"v": v, "c": c, "t": "Blue Shirts"})
        call(url, "POST", f"/{index}/_refresh")
        check(True, "knn_vector index (lucene, cosinesimil)")

        knn = {"v": {"vector": [1.0, 0.0, 0.0], "k": 3, "filter": {"term": {"c": "b"}}}}
        hits = call(url, "POST", f"/{index}/_search", {"query": {"knn": knn}})["hits"]["hits"]
        check([h["_id"] for h in hits] == ["2", "3"], "filtered knn query")

        script = {
            "source": "cosineSimilarity(params.q, doc['v']) + 1.0",
            "params": {"q": [1.0, 0.0, 0.0]},
        }
        body = {"query": {"script_score": {"query": {"match_all": {}}, "script": script}}}
        hits = call(url, "POST", f"/{index}/_search", body)["hits"]["hits"]
        check(
            [h["_id"] for h in hits] == ["1", "2", "3"] and abs(hits[0]["_score"] - 2.0) < 1e-4,
            "Painless script_score with cosineSimilarity",
        )

        tokens = call(
            url,
            "POST",
            f"/{index}/_analyze",
            {"analyzer": "lookalike_text", "text": "Blue-Shirts, Crème"},
        )
        words = [t["token"] for t in tokens["tokens"]]
        check(words == ["blue", "shirt", "creme"], f"_analyze with lookalike_text ({words})")
    finally:
        call(url, "DELETE", f"/{index}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
