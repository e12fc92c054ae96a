"""Re-ranking: candidates from a keyword/filter query re-scored by similarity to anchors."""

from reranker.service import Hit, SearchResult, search, similar

__all__ = ["Hit", "SearchResult", "search", "similar"]
