"""What the pipeline needs to run: the engine, the models and the image limits.

Built once per process (CLI run or Celery worker) and reused for every batch, because
loading models is the slow part.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lookalike.engines import Engine, open_engine
from lookalike.netguard import Resolver, split_list
from lookalike.settings import Settings
from lookalike.vectorizers import create_image_vectorizer, create_text_embedder
from lookalike.vectorizers.base import ImageVectorizer, TextEmbedder


@dataclass
class IndexContext:
    engine: Engine
    image_vectorizer: ImageVectorizer
    text_embedder: TextEmbedder | None
    image_timeout: float = 10.0
    image_max_bytes: int = 20_000_000
    allowed_hosts: tuple[str, ...] = ()
    image_roots: tuple[Path, ...] = ()
    resolve: Resolver | None = field(default=None, repr=False)  # tests fake DNS here


def build_context(settings: Settings, engine: Engine | None = None) -> IndexContext:
    """Load the engine and models named by the settings."""
    return IndexContext(
        engine=engine or open_engine(settings),
        image_vectorizer=create_image_vectorizer(settings.image_model, settings.image_tensor),
        text_embedder=create_text_embedder(settings.text_model),
        image_timeout=settings.image_timeout,
        image_max_bytes=settings.image_max_bytes,
        allowed_hosts=tuple(split_list(settings.image_allowed_hosts)),
        image_roots=tuple(Path(p) for p in split_list(settings.image_roots, os.pathsep)),
    )
