"""The ``lookalike`` command line: a thin layer over indexer, reranker and the engine.

One module per command group registers its commands on the shared Typer ``app``.
"""

from lookalike.cli import analysis, ingest, ops, query, sessions, tune  # noqa: F401  (registers the commands)
from lookalike.cli.common import app

__all__ = ["app"]
