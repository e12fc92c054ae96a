"""Vectorizer factory: a ``.tflite`` path runs on LiteRT, anything else on sentence-transformers.

Loaded models are cached per process (workers and the API reuse them across requests).
Heavy packages are imported only when a model of that kind is created.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

from lookalike.errors import ConfigError
from lookalike.vectorizers.base import ImageVectorizer, TextEmbedder

__all__ = [
    "ImageVectorizer",
    "TextEmbedder",
    "create_image_vectorizer",
    "create_text_embedder",
    "clear_model_cache",
]

_LOAD_LOCK = threading.Lock()  # two threads asking for one model load it once


def create_image_vectorizer(model: str, tensor: str | None = None, **kw: Any) -> ImageVectorizer:
    """An image vectorizer for ``model``: a ``.tflite`` file, a hub name, a local folder, or a
    model-free baseline (``pixels``, ``color-histogram``).

    ``tensor`` (TFLite only) names an intermediate tensor to read as the embedding.
    Extra keywords go to the vectorizer (``num_threads``, ``batch_size``, ``device``).
    """
    with _LOAD_LOCK:
        return _image_vectorizer(str(model), tensor or None, tuple(sorted(kw.items())))


def create_text_embedder(
    model: str | None, backend: str = "torch", **kw: Any
) -> TextEmbedder | None:
    """A text embedder, or None when ``model`` is empty or ``"none"`` (text search disabled).

    ``backend``: ``torch`` (sentence-transformers) or ``onnx`` (an int8 ONNX export of the same
    weights, made locally and cached under ``cache_dir``).
    """
    if model is None or model.strip().casefold() in ("", "none"):
        return None
    if backend not in ("torch", "onnx"):
        raise ConfigError(f"unknown text backend {backend!r}: use 'torch' or 'onnx'")
    with _LOAD_LOCK:
        return _text_embedder(model.strip(), backend, tuple(sorted(kw.items())))


def clear_model_cache() -> None:
    """Forget cached models (tests, or after replacing a model on disk)."""
    _image_vectorizer.cache_clear()
    _text_embedder.cache_clear()


@lru_cache(maxsize=8)
def _image_vectorizer(
    model: str, tensor: str | None, kw: tuple[tuple[str, Any], ...]
) -> ImageVectorizer:
    from lookalike.vectorizers.baselines import BASELINES

    if model in BASELINES:
        return BASELINES[model]()
    if model.casefold().endswith(".tflite"):
        from lookalike.vectorizers.litert import LiteRTImageVectorizer

        return LiteRTImageVectorizer(model, tensor=tensor, **dict(kw))
    if tensor:
        raise ConfigError(f"a tensor name only applies to .tflite models, not {model!r}")
    from lookalike.vectorizers.sentence import SentenceTransformerImageVectorizer

    return SentenceTransformerImageVectorizer(model, **dict(kw))


@lru_cache(maxsize=4)
def _text_embedder(model: str, backend: str, kw: tuple[tuple[str, Any], ...]) -> TextEmbedder:
    if backend == "onnx":
        from lookalike.vectorizers.onnx_text import OnnxTextEmbedder

        return OnnxTextEmbedder(model, **dict(kw))
    from lookalike.vectorizers.sentence import SentenceTransformerTextEmbedder

    return SentenceTransformerTextEmbedder(model, **dict(kw))
