"""Converters from public datasets into the catalogue format (JSON Lines)."""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from lookalike.errors import InvalidInput

FASHION_ATTRIBUTES = ("gender", "masterCategory", "subCategory", "season", "year", "usage")
# Product names read "<Brand> <Gender> <rest>" ("Peter England Men Blue Shirt").
_GENDER_WORDS = frozenset(
    {"men", "mens", "men's", "women", "womens", "women's", "boys", "boy", "boy's"}
    | {"girls", "girl", "girl's", "unisex", "kids"}
)


def _brand_guess(name: str) -> str:
    words = name.split()
    cut = next((i for i, w in enumerate(words) if w.lower() in _GENDER_WORDS), None)
    return " ".join(words[:cut]) if cut else (words[0] if words else "")


def fashion_brands(names: Sequence[str], min_count: int = 3) -> list[str]:
    """The brand each product name starts with (fashion-10k has no brand column).

    The words before the first gender word are a brand guess; guesses seen at least
    ``min_count`` times form the brand list, and each name takes the longest listed brand it
    starts with ("Gini and Jony Boy's Kaleb" -> "Gini and Jony"), else its first word."""
    counts = Counter(_brand_guess(n) for n in names)
    known = sorted((b for b, c in counts.items() if b and c >= min_count), key=len, reverse=True)
    out = []
    for name in names:
        low = name.lower() + " "
        brand = next((b for b in known if low.startswith(b.lower() + " ")), None)
        out.append(brand or (name.split()[0] if name.split() else ""))
    return out


def fashion_records(
    source: Path, output_dir: Path, limit: int | None = None
) -> list[dict[str, object]]:
    """fashion-10k rows as catalogue records: title = productDisplayName, category =
    articleType, color = baseColour, the other labels as attributes; image paths relative to
    ``output_dir`` (where the catalogue file will live)."""
    styles = source / "styles.csv"
    if not styles.is_file():
        raise InvalidInput(f"{styles} not found: expected the fashion-10k folder")
    with open(styles, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    brands = fashion_brands([row["productDisplayName"] for row in rows])
    records: list[dict[str, object]] = []
    for row, brand in zip(rows, brands, strict=True):
        if limit is not None and len(records) >= limit:
            break
        image = os.path.relpath((source / "images" / row["image"]).resolve(), output_dir)
        records.append(
            {
                "id": row["id"],
                "title": row["productDisplayName"],
                "brand": brand or None,
                "category": row["articleType"] or None,
                "color": row["baseColour"] or None,
                "attributes": {k: row[k] for k in FASHION_ATTRIBUTES if row.get(k)},
                "images": [image],
            }
        )
    return records


def convert_dataset(kind: str, source: Path, output: Path, limit: int | None = None) -> int:
    """Write a dataset as a JSON Lines catalogue; returns the number of products."""
    if kind != "fashion-10k":
        raise InvalidInput(f"unknown dataset {kind!r}: expected fashion-10k")
    output.parent.mkdir(parents=True, exist_ok=True)
    records = fashion_records(source, output.parent.resolve(), limit)
    with open(output, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return len(records)
