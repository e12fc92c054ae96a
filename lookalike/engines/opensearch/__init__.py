"""OpenSearch backend (the ``opensearch`` extra): see docs/opensearch.md.

The body builders (``mapping``, ``queries``, ``rescore``, ``source``) are plain Python; only
the engine needs opensearch-py, and asking for it without the extra raises MissingExtra.
"""

from __future__ import annotations

from typing import Any

__all__ = ["OpenSearchEngine"]


def __getattr__(name: str) -> Any:
    if name == "OpenSearchEngine":
        from lookalike.engines.opensearch.errors import require_client

        require_client()
        from lookalike.engines.opensearch.adapter import OpenSearchEngine

        return OpenSearchEngine
    raise AttributeError(name)
