"""Re-ranking: candidates from a keyword/filter/kNN query re-scored by similarity to anchors."""

from reranker.request import Anchor, RerankRequest, parse_weighted_ids, parse_weights
from reranker.results import Hit, SearchResult
from reranker.service import run, search, similar

__all__ = [
    "Anchor",
    "Hit",
    "RerankRequest",
    "SearchResult",
    "parse_weighted_ids",
    "parse_weights",
    "run",
    "search",
    "similar",
]
