"""Model-free baselines: shapes, unit rows, and that they see what they claim to see."""

from __future__ import annotations

import numpy as np
from PIL import Image

from lookalike.vectorizers import create_image_vectorizer


def solid(rgb: tuple[int, int, int], size: int = 80) -> Image.Image:
    img = Image.new("RGB", (size, size), "white")
    img.paste(Image.new("RGB", (size // 2, size // 2), rgb), (size // 4, size // 4))
    return img


def test_color_histogram_groups_by_colour_and_ignores_background() -> None:
    vec = create_image_vectorizer("color-histogram")
    red, red2, blue = vec.embed_images(
        [solid((200, 20, 20)), solid((210, 30, 25), 120), solid((20, 30, 200))]
    )
    assert vec.dim == red.shape[0] and np.isclose(np.linalg.norm(red), 1.0)
    assert red @ red2 > 0.9 > red @ blue
    white = vec.embed_images([Image.new("RGB", (40, 40), "white")])[0]
    assert np.isclose(np.linalg.norm(white), 1.0)  # an all-background image still embeds


def test_pixels_baseline() -> None:
    vec = create_image_vectorizer("pixels")
    out = vec.embed_images([solid((200, 20, 20)), solid((20, 30, 200))])
    assert out.shape == (2, 16 * 16 * 3) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0)
    assert vec.tag == "pixels@16x16"
    assert vec.embed_images([]).shape == (0, vec.dim)
