"""A small catalogue the demo makes itself, for machines without the shared datasets.

``python -m lookalike.demo OUT_DIR [N]`` draws N product photos (a coloured shape on white:
circles, squares, stripes, triangles in eight colours) and writes ``OUT_DIR/catalogue.jsonl``
with titles, brands, categories, colours, prices and a size attribute. Offline, seeded, no
model download: index it with the model-free ``color-histogram`` image model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLORS = {
    "Red": (200, 30, 30),
    "Green": (30, 160, 60),
    "Blue": (30, 60, 200),
    "Yellow": (230, 200, 30),
    "Black": (25, 25, 25),
    "Pink": (235, 120, 170),
    "Orange": (240, 130, 20),
    "Purple": (120, 50, 160),
}
SHAPES = {"circle": "Round Cushion", "square": "Square Tile", "stripes": "Striped Rug"}
SHAPES["triangle"] = "Triangle Print"
BRANDS = ("Acme", "Globex", "Initech")


def draw(path: Path, rgb: tuple[int, int, int], shape: str, rng: np.random.Generator) -> None:
    """One photo: the shape in its colour on white, jittered, with a little noise."""
    img = Image.new("RGB", (128, 128), "white")
    d = ImageDraw.Draw(img)
    j = int(rng.integers(0, 12))
    if shape == "circle":
        d.ellipse((16 + j, 16, 112, 112 - j), fill=rgb)
    elif shape == "square":
        d.rectangle((20, 20 + j, 108 - j, 108), fill=rgb)
    elif shape == "stripes":
        for x in range(8 + j % 4, 128, 24):
            d.rectangle((x, 0, x + 10, 127), fill=rgb)
    else:
        d.polygon([(64, 12 + j), (116, 112), (12, 112)], fill=rgb)
    noise = rng.integers(-12, 13, size=(128, 128, 3))
    pixels = np.clip(np.asarray(img, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=90)


def make_catalogue(out_dir: Path, n: int = 240, seed: int = 0) -> Path:
    """Write ``n`` products and their photos under ``out_dir``; returns the catalogue path."""
    rng = np.random.default_rng(seed)
    images = out_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    names, shapes = list(COLORS), list(SHAPES)
    lines = []
    for i in range(n):
        color, shape = names[i % len(names)], shapes[(i // len(names)) % len(shapes)]
        photo = images / f"{i}.jpg"
        draw(photo, COLORS[color], shape, rng)
        record = {
            "id": str(i),
            "title": f"{color} {SHAPES[shape]} {i}",
            "description": f"A {color.lower()} {shape} design.",
            "brand": BRANDS[i % len(BRANDS)],
            "category": shape,
            "color": color,
            "price": round(float(rng.uniform(5, 80)), 2),
            "attributes": {"size": ["S", "M", "L"][i % 3]},
            "images": [f"images/{i}.jpg"],
        }
        lines.append(json.dumps(record))
    path = out_dir / "catalogue.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        print("usage: python -m lookalike.demo OUT_DIR [N]", file=sys.stderr)
        return 2
    path = make_catalogue(Path(argv[0]), int(argv[1]) if len(argv) > 1 else 240)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
