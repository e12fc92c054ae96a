"""The vectorizer contract: a name, a dimension, a version, and batched L2-normalised embeddings."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
from PIL import Image


def l2_normalize(matrix: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation to float32 (zero rows stay zero)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


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
