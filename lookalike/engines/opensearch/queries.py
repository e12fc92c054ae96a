"""Request bodies for reads: filters, keyword candidates, filtered k-NN, counts, id pages.

User text only ever reaches ``multi_match`` (analysed as plain text, never parsed as query
syntax). Keyword filters match the ``filter_terms`` field, which holds ``field=value`` pairs
normalised by :func:`lookalike.filters.normalize_value`, so term filters are case-insensitive
and arbitrary attribute keys never grow the mapping.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lookalike.engines.opensearch.mapping import vector_field
from lookalike.errors import InvalidFilter
from lookalike.filters import And, Filter, Not, Or, Range, Term, Terms, normalize_value
from lookalike.vectors import unit

JsonDict = dict[str, Any]
# The embedded engine's fields and boosts (its BM25 sums every token over every field, as
# ``most_fields`` does), with the same analysis: split on non-alphanumerics, lowercase, fold,
# English (Porter2) stemming; see ``lookalike_text`` in mappings/products.json.
TEXT_FIELDS = (
    "title^2",
    "brand^1.5",
    "category^1.2",
    "color^1.2",
    "attribute_text",
    "description",
)
FILTER_FIELD = "filter_terms"
MAX_TEXT = 1000


def filter_term(field: str, value: str) -> str:
    """The indexed form of one keyword value: ``field=normalised value``."""
    return f"{field}={normalize_value(value)}"


def filter_clause(node: Filter) -> JsonDict:
    """A filter expression as a query-DSL clause (filter context, no scoring)."""
    if isinstance(node, Term):
        return {"term": {FILTER_FIELD: filter_term(node.field, node.value)}}
    if isinstance(node, Terms):
        values = sorted({filter_term(node.field, v) for v in node.values})
        return {"terms": {FILTER_FIELD: values}}
    if isinstance(node, Range):
        bounds = {k: v for k in ("gte", "lte", "gt", "lt") if (v := getattr(node, k)) is not None}
        if not bounds:  # no bound: any value matches, a missing one does not (as embedded)
            return {"exists": {"field": node.field}}
        return {"range": {node.field: bounds}}
    if isinstance(node, And):
        return {"bool": {"filter": [filter_clause(i) for i in node.items]}}
    if isinstance(node, Or):
        return {
            "bool": {"should": [filter_clause(i) for i in node.items], "minimum_should_match": 1}
        }
    if isinstance(node, Not):
        return {"bool": {"must_not": [filter_clause(node.item)]}}
    raise InvalidFilter(f"unknown filter node {node!r}")


def restriction(filters: Filter | None, exclude: Sequence[str] = ()) -> JsonDict:
    """Filters plus excluded ids as one ``bool`` clause (``match_all`` when empty)."""
    clause: JsonDict = {}
    if filters is not None:
        clause["filter"] = [filter_clause(filters)]
    if exclude:
        clause["must_not"] = [{"ids": {"values": sorted(set(exclude))}}]
    return {"bool": clause} if clause else {"match_all": {}}


_SEPARATORS = str.maketrans({ch: " " for ch in ':()[]{}"~*?\\/^!<>=&|+'})


def clean_text(query: str | None) -> str:
    """User text for ``multi_match``: no control characters, bounded length, and query-syntax
    punctuation as spaces (the standard tokenizer keeps ``title:boot`` as one token)."""
    if not query:
        return ""
    text = "".join(ch if ch.isprintable() else " " for ch in query).translate(_SEPARATORS)
    return " ".join(text.split())[:MAX_TEXT]


def keyword_body(text: str, filters: Filter | None, limit: int) -> JsonDict:
    """BM25 candidates for ``text`` within the filters (``text`` already cleaned, non-empty)."""
    query: JsonDict = {
        "bool": {
            "must": [
                {
                    "multi_match": {
                        "query": text,
                        "fields": list(TEXT_FIELDS),
                        "type": "most_fields",
                        "operator": "or",
                        "lenient": True,
                    }
                }
            ],
            "filter": [filter_clause(filters)] if filters is not None else [],
        }
    }
    return {
        "size": limit,
        "query": query,
        "_source": False,
        # Plain field names: the spec's ``oneOf`` rejects ``{"id": {"order": "asc"}}`` as
        # ambiguous; ``_score`` sorts descending and fields ascending by default.
        "sort": ["_score", "id"],
        "track_total_hits": False,
    }


def listing_body(filters: Filter | None, limit: int, after: str | None = None) -> JsonDict:
    """Products matching the filters in id order (no text query: score 0, stable order)."""
    body: JsonDict = {
        "size": limit,
        "query": restriction(filters),
        "_source": False,
        "sort": ["id"],
        "track_total_hits": False,
    }
    if after is not None:
        body["search_after"] = [after]
    return body


def knn_body(
    vector: np.ndarray,
    k: int,
    filters: Filter | None,
    exclude: Sequence[str],
    space: str,
    ef_search: int = 256,
    field: str | None = None,
) -> JsonDict:
    """Filtered k-NN: the ``knn`` query with its ``filter`` (efficient filtering in Lucene),
    over ``field`` (a projected space's) or the space's stored vectors.

    ``ef_search`` widens the HNSW beam beyond ``k`` (as the embedded engine's does): with a
    beam of ``k`` alone, Lucene misses true neighbours even in a graph of 60 vectors."""
    knn: JsonDict = {
        "vector": unit_list(vector),
        "k": k,
        "method_parameters": {"ef_search": max(int(ef_search), k)},
    }
    if filters is not None or exclude:
        knn["filter"] = restriction(filters, exclude)
    return {
        "size": k,
        "query": {"knn": {field or vector_field(space): knn}},
        "_source": False,
        "track_total_hits": False,
    }


def count_body(filters: Filter | None) -> JsonDict:
    """``POST /<index>/_count`` body."""
    return {"query": restriction(filters)}


def mget_body(ids: Sequence[str]) -> JsonDict:
    """``POST /<index>/_mget`` body (realtime reads: no refresh needed)."""
    return {"ids": list(dict.fromkeys(ids))}


def unit_list(vector: np.ndarray) -> list[float]:
    """A query vector as a JSON list, L2-normalised (the index stores unit vectors)."""
    return [float(x) for x in unit(np.ravel(vector))]


def cosine_from_score(score: float) -> float:
    """Lucene ``cosinesimil`` reports ``(1 + cos) / 2``; undo it."""
    return 2.0 * float(score) - 1.0
