"""The HTTP API (FastAPI): a thin layer over the reranker and the engine."""
