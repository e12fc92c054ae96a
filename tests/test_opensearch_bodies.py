"""Every body the OpenSearch adapter sends, validated against the official API spec and
pinned as golden JSON (``UPDATE_GOLDEN=1 pytest tests/test_opensearch_bodies.py`` rewrites
the files after a deliberate change; review the diff)."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lookalike.engines.opensearch import mapping, queries, rescore
from lookalike.filters import And, Not, Or, Range, Term, Terms

spec = pytest.importorskip("tests.opensearch_spec")
if not spec.SPEC_PATH.is_file():
    pytest.skip(f"OpenSearch spec not found at {spec.SPEC_PATH}", allow_module_level=True)

GOLDEN = Path(__file__).parent / "golden"
FILTER = And(
    (
        Term("color", " Navy  BLUE "),
        Or((Terms("brand", ("Acme", "globex")), Term("attributes.material", "Linen"))),
        Not(Range("price", gt=100)),
        Range("price", gte=5.5),
    )
)
VEC = np.array([3.0, 0.0, 4.0, 0.0], dtype=np.float32)  # normalised to 0.6, 0.8
ANCHORS = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32)
NEGATIVES = np.array([[0, 0, 0, 2]], dtype=np.float32)
PARAMS = rescore.script_params(
    ANCHORS, [2.0, 1.0], NEGATIVES, negative_strength=0.5, mode="average"
)
KNN = queries.knn_body(VEC, 10, FILTER, ["p9", "p2"], "image")


def bodies() -> dict[str, tuple[str, str, Any]]:
    """Name -> (method, path, body) for every body builder."""
    return {
        "create_products": (
            "PUT",
            "/lookalike-products-v1",
            mapping.products_index_body(
                {"image": 512, "text": 384, "attributes": 64},
                {"image": "clip-ViT-B-32@1", "text": "all-MiniLM-L6-v2@1"},
                aliases=("lookalike-products",),
            ),
        ),
        "create_image_cache": (
            "PUT",
            "/lookalike-image-cache",
            mapping.plain_index_body("image_cache"),
        ),
        "create_meta": ("PUT", "/lookalike-meta", mapping.plain_index_body("meta")),
        "create_projections": (
            "PUT",
            "/lookalike-projections",
            mapping.plain_index_body("projections"),
        ),
        "create_provenance": (
            "PUT",
            "/lookalike-provenance",
            mapping.plain_index_body("provenance"),
        ),
        "put_projected_field": (
            "PUT",
            "/lookalike-products/_mapping",
            mapping.projected_field_body(
                mapping.projected_field("image", "clip@1+pca64-0123456789"), 64
            ),
        ),
        "put_models_meta": (
            "PUT",
            "/lookalike-products/_mapping",
            mapping.models_meta_body(
                {"schema": "lookalike-products", "schema_version": 1, "models": {"image": "a@1"}},
                {"image": "a@2", "text": "t@1"},
            ),
        ),
        "put_mapping": (
            "PUT",
            "/lookalike-products/_mapping",
            mapping.add_vector_fields_body({"attributes": 64}),
        ),
        "alias_swap": (
            "POST",
            "/_aliases",
            mapping.alias_swap_actions("lookalike-products", ["lookalike-products-v1"], "v2"),
        ),
        "keyword": (
            "POST",
            "/lookalike-products/_search",
            queries.keyword_body(queries.clean_text("linen  dress\x00"), FILTER, 100),
        ),
        "listing": ("POST", "/lookalike-products/_search", queries.listing_body(FILTER, 50, "p1")),
        "knn": ("POST", "/lookalike-products/_search", KNN),
        "count": ("POST", "/lookalike-products/_count", queries.count_body(FILTER)),
        "count_all": ("POST", "/lookalike-products/_count", queries.count_body(None)),
        "mget": ("POST", "/lookalike-products/_mget", queries.mget_body(["b", "a", "b"])),
        "rescore_knn": (
            "POST",
            "/lookalike-products/_search",
            rescore.rescored_search_body(KNN, PARAMS, 200, 10),
        ),
        "rescore_two_signals": (
            "POST",
            "/lookalike-products/_search",
            rescore.rescored_search_body(
                KNN,
                rescore.combined_params(
                    [
                        rescore.signal_params(ANCHORS, mode="min", weight=0.8),
                        rescore.signal_params(ANCHORS[:1, :2], space="text", weight=0.2),
                    ]
                ),
                100,
                10,
            ),
        ),
        "rescore_keyword": (
            "POST",
            "/lookalike-products/_search",
            rescore.rescored_search_body(
                queries.keyword_body("dress", None, 500),
                rescore.script_params(ANCHORS[:1], mode="max", shift=0.25),
                500,
                20,
                query_weight=0.125,
            ),
        ),
    }


@pytest.mark.parametrize("name", sorted(bodies()))
def test_body_is_valid_against_spec(name: str) -> None:
    method, path, body = bodies()[name]
    spec.validate_request(method, path, body)


@pytest.mark.parametrize("name", sorted(bodies()))
def test_body_matches_golden(name: str) -> None:
    _, _, body = bodies()[name]
    check_golden(name, body)


def check_golden(name: str, body: Any) -> None:
    """Compare with tests/golden/<name>.json (written when UPDATE_GOLDEN is set)."""
    path = GOLDEN / f"{name}.json"
    text = json.dumps(body, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"missing golden file {path}: run with UPDATE_GOLDEN=1"
    assert rounded(json.loads(path.read_text(encoding="utf-8"))) == rounded(json.loads(text))


def rounded(value: Any) -> Any:
    """Floats to 12 significant digits: the last bits of a unit vector differ between BLAS
    builds and CPUs (0.8944271909999159 here, 0.894427190999916 there), the body does not."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def test_filters_are_normalised_and_text_is_never_query_syntax() -> None:
    body = bodies()["keyword"][2]
    text = json.dumps(body)
    assert "query_string" not in text and "simple_query_string" not in text
    assert body["query"]["bool"]["must"][0]["multi_match"]["query"] == "linen dress"
    assert '"filter_terms": "color=navy blue"' in text
    assert KNN["query"]["knn"]["vec_image"]["vector"] == pytest.approx([0.6, 0.0, 0.8, 0.0])


def _broken() -> dict[str, tuple[str, str, Any]]:
    out = {}
    knn = copy.deepcopy(KNN)
    knn["query"]["knn"]["vec_image"]["k"] = "ten"
    out["knn_k_string"] = ("POST", "/p/_search", knn)
    res = rescore.rescored_search_body(KNN, PARAMS, 200, 10)
    res["rescore"][0]["window_size"] = "wide"
    out["rescore_window"] = ("POST", "/p/_search", res)
    create = mapping.products_index_body({"image": 4}, {})
    create["settings"]["index"]["number_of_shards"] = {"many": True}
    out["create_shards"] = ("PUT", "/p", create)
    alias = {"actions": [{"add": {"index": 5, "alias": ["a"]}}]}
    out["alias_types"] = ("POST", "/_aliases", alias)
    out["mget_ids"] = ("POST", "/p/_mget", {"ids": [{"id": "a"}]})
    out["count_query"] = ("POST", "/p/_count", {"query": "color:red"})
    bulk = [{"index": {"_index": "p", "_id": "1", "version_type": "newest"}}, {"a": 1}]
    out["bulk_version_type"] = ("POST", "/_bulk", bulk)
    out["bulk_missing_source"] = ("POST", "/_bulk", [{"index": {"_index": "p", "_id": "1"}}])
    return out


@pytest.mark.parametrize("name", sorted(_broken()))
def test_broken_bodies_are_caught(name: str) -> None:
    method, path, body = _broken()[name]
    with pytest.raises(spec.SpecViolation):
        spec.validate_request(method, path, body)
