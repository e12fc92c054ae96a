"""Engine factory: picks a backend by name, importing it only when chosen."""

from __future__ import annotations

from pathlib import Path

from lookalike.engines.base import Engine, UpsertResult
from lookalike.errors import ConfigError
from lookalike.settings import Settings

__all__ = ["Engine", "UpsertResult", "create_engine", "open_engine"]


def create_engine(name: str, data_dir: Path | str, **options: object) -> Engine:
    """Build the engine called ``name`` (``embedded`` is the default, serverless one)."""
    if name == "embedded":
        from lookalike.engines.embedded import EmbeddedEngine

        return EmbeddedEngine(Path(data_dir), **options)  # type: ignore[arg-type]
    if name == "opensearch":
        from lookalike.engines.opensearch import OpenSearchEngine

        return OpenSearchEngine(**options)  # type: ignore[arg-type]
    raise ConfigError(f"unknown engine {name!r}: expected 'embedded' or 'opensearch'", engine=name)


def open_engine(settings: Settings) -> Engine:
    """The engine the settings name, with its options."""
    if settings.engine == "opensearch":
        return create_engine(
            "opensearch",
            settings.data_dir,
            url=settings.opensearch_url,
            prefix=settings.opensearch_prefix,
            pushdown=settings.opensearch_pushdown,
            timeout=settings.opensearch_timeout,
        )
    return create_engine(settings.engine, settings.data_dir, ann_threshold=settings.ann_threshold)
