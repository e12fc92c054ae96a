"""Converters from public datasets into the catalogue format (JSON Lines)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from lookalike.errors import InvalidInput

FASHION_ATTRIBUTES = ("gender", "masterCategory", "subCategory", "season", "year", "usage")


def fashion_records(
    source: Path, output_dir: Path, limit: int | None = None
) -> list[dict[str, object]]:
    """fashion-10k rows as catalogue records: title = productDisplayName, category =
    articleType, color = baseColour, the other labels as attributes; image paths relative to
    ``output_dir`` (where the catalogue file will live)."""
    styles = source / "styles.csv"
    if not styles.is_file():
        raise InvalidInput(f"{styles} not found: expected the fashion-10k folder")
    records: list[dict[str, object]] = []
    with open(styles, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if limit is not None and len(records) >= limit:
                break
            image = os.path.relpath((source / "images" / row["image"]).resolve(), output_dir)
            records.append(
                {
                    "id": row["id"],
                    "title": row["productDisplayName"],
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
