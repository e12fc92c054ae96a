"""The embedded engine: SQLite (truth) + tantivy (keywords) + numpy/faiss (vectors)."""

from lookalike.engines.embedded.engine import EmbeddedEngine

__all__ = ["EmbeddedEngine"]
