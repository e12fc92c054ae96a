"""Model-free baselines every learned model is compared against.

``pixels``: the image shrunk to 16x16 RGB, as a vector (Euclidean distance between
downscaled images; stored L2-normalised like every vector, which ranks by cosine).
``color-histogram``: a hue/saturation/value histogram of the product's pixels, with the
near-white, unsaturated background left out; square-rooted and normalised, so the cosine
of two histograms is their Bhattacharyya coefficient.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from lookalike.vectorizers.base import ImageVectorizer
from lookalike.vectors import unit_rows

PIXEL_SIDE = 16
HUE_BINS, SAT_BINS, VAL_BINS = 12, 4, 4


class PixelVectorizer(ImageVectorizer):
    name = "pixels"
    version = f"{PIXEL_SIDE}x{PIXEL_SIDE}"
    dim = PIXEL_SIDE * PIXEL_SIDE * 3

    def raw(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Unnormalised pixel vectors in [0, 1] (for true Euclidean comparisons)."""
        rows = [
            np.asarray(
                img.convert("RGB").resize((PIXEL_SIDE, PIXEL_SIDE), Image.Resampling.BILINEAR)
            )
            for img in images
        ]
        if not rows:
            return np.zeros((0, self.dim), np.float32)
        return np.stack(rows).reshape(len(rows), -1).astype(np.float32) / 255.0

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return unit_rows(self.raw(images))


class ColorHistogramVectorizer(ImageVectorizer):
    name = "color-histogram"
    version = f"hsv{HUE_BINS}x{SAT_BINS}x{VAL_BINS}"
    dim = HUE_BINS * SAT_BINS * VAL_BINS

    def _one(self, img: Image.Image) -> np.ndarray:
        small = img.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR).convert("HSV")
        hsv = np.asarray(small, dtype=np.int32).reshape(-1, 3)
        h, s, v = hsv[:, 0], hsv[:, 1], hsv[:, 2]
        product = ~((s < 30) & (v > 225))  # drop the white studio background
        if not product.any():
            product[:] = True
        h, s, v = h[product], s[product], v[product]
        bins = (
            (h * HUE_BINS // 256) * SAT_BINS * VAL_BINS
            + (s * SAT_BINS // 256) * VAL_BINS
            + (v * VAL_BINS // 256)
        )
        counts = np.bincount(bins, minlength=self.dim).astype(np.float32)
        return np.sqrt(counts / counts.sum())

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), np.float32)
        return unit_rows(np.stack([self._one(img) for img in images]))


COLOR_SPACE = "color"  # the palette signal stored beside every image model's vectors


def color_vectorizer() -> ImageVectorizer:
    """The colour/style vectorizer of the ``color`` space: the background-free HSV histogram,
    computed from images the image model already decoded (no second model inference)."""
    return ColorHistogramVectorizer()


BASELINES: dict[str, type[ImageVectorizer]] = {
    PixelVectorizer.name: PixelVectorizer,
    ColorHistogramVectorizer.name: ColorHistogramVectorizer,
}
