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


MAX_BRAND_WORDS = 4  # "United Colors of Benetton"


def _gender_cut(words: Sequence[str]) -> int | None:
    """Index of the first gender word, None when the name has none."""
    return next((i for i, w in enumerate(words) if w.lower() in _GENDER_WORDS), None)


def fashion_brands(names: Sequence[str], min_count: int = 3) -> list[str]:
    """The brand each product name starts with (fashion-10k has no brand column).

    Names read "<Brand> <Gender> <rest>", so the words before the first gender word are a
    brand candidate; candidates seen at least ``min_count`` times (ignoring case) are the known
    brands, and each name takes the longest known brand it starts with ("Gini and Jony Boy's
    Kaleb" -> "Gini and Jony"). A name starting with no known brand takes its first word when
    at least ``min_count`` names start with it ("Tous In Heaven Men" -> "TOUS"), else its words
    before the gender word ("Yves Saint Laurent Men", seen once), else its first word. Each
    brand is spelt as most names spell it ("Casio" and "CASIO" are one brand).
    """
    split = [n.split() for n in names]
    candidates: Counter[str] = Counter()
    firsts: Counter[str] = Counter()
    spellings: dict[str, Counter[str]] = {}
    for words in split:
        if not words:
            continue
        cut = _gender_cut(words)
        if cut:
            candidates[" ".join(words[:cut]).lower()] += 1
        firsts[words[0].lower()] += 1
        for n in range(1, min(len(words), MAX_BRAND_WORDS) + 1):
            text = " ".join(words[:n])
            spellings.setdefault(text.lower(), Counter())[text] += 1
    known = {b for b, c in candidates.items() if c >= min_count}
    out = []
    for words in split:
        if not words:
            out.append("")
            continue
        lowered = [w.lower() for w in words[:MAX_BRAND_WORDS]]
        prefixes = [" ".join(lowered[:n]) for n in range(len(lowered), 0, -1)]
        brand = next((p for p in prefixes if p in known), None)
        if brand is None:
            cut = _gender_cut(words)
            if firsts[lowered[0]] >= min_count or not cut or cut > MAX_BRAND_WORDS:
                brand = lowered[0]
            else:
                brand = " ".join(lowered[:cut])
        out.append(spellings[brand].most_common(1)[0][0])
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
