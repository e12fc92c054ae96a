"""The vectorizer contract: a name, a dimension, a version, and batched L2-normalised embeddings."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
from PIL import Image


class ImageVectorizer(ABC):
    """Turns RGB images into unit vectors. ``tag`` (``name@version``) labels every stored vector."""

    name: str
    dim: int
    version: str
    batch_size: int = 32

    @property
    def tag(self) -> str:
        return f"{self.name}@{self.version}"

    @abstractmethod
    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """float32 ``[len(images), dim]``, rows L2-normalised."""

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Text in the image space (joint text-image models such as CLIP only)."""
        raise NotImplementedError(f"{self.name} has no joint text-image space")


class TextEmbedder(ABC):
    """Turns product text into unit vectors."""

    name: str
    dim: int
    version: str

    @property
    def tag(self) -> str:
        return f"{self.name}@{self.version}"

    @abstractmethod
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """float32 ``[len(texts), dim]``, rows L2-normalised."""
