"""Catalogue input: JSON Lines or CSV (with a column mapping), validated record by record.

A bad record is reported with its line number and reason and never stops the rest. Local
image paths are resolved against the catalogue file's folder, so a record can travel to a
worker on its own.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lookalike.errors import InvalidInput
from lookalike.images import has_scheme

LIST_SEPARATOR = "|"
RECORD_FIELDS = (
    "id",
    "title",
    "description",
    "brand",
    "category",
    "color",
    "price",
    "attributes",
    "images",
)


class ProductRecord(BaseModel):
    """One catalogue product, exactly as users supply it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=512)
    title: str = ""
    description: str = ""
    brand: str | None = None
    category: str | None = None
    color: str | None = None
    price: float | None = Field(None, ge=0, allow_inf_nan=False)
    attributes: dict[str, list[str]] = Field(default_factory=dict)
    images: list[str] = Field(min_length=1)

    @field_validator("id", mode="before")
    @classmethod
    def _id_to_str(cls, value: Any) -> Any:
        # Numeric ids are common in exports; they are kept as their decimal text.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("brand", "category", "color", mode="before")
    @classmethod
    def _empty_to_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("attributes", mode="before")
    @classmethod
    def _attributes_as_lists(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            return value  # pydantic reports the type error
        out: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(item, str):
                item = [item]
            if isinstance(item, list):
                item = [v.strip() for v in item if isinstance(v, str) and v.strip()] + [
                    v for v in item if not isinstance(v, str)
                ]
            out[str(key).strip()] = item
        return {k: v for k, v in out.items() if k and v != []}

    @field_validator("images")
    @classmethod
    def _images_not_blank(cls, value: list[str]) -> list[str]:
        images = [v for v in value if v]
        if not images:
            raise ValueError("images must list at least one path or URL")
        return images


@dataclass(frozen=True)
class RecordError:
    """A record that could not be read: where, which id (when known), and why."""

    line: int
    reason: str
    id: str | None = None

    def __str__(self) -> str:
        who = f" (id {self.id})" if self.id else ""
        return f"line {self.line}{who}: {self.reason}"


@dataclass(frozen=True)
class ParsedRecord:
    line: int
    record: ProductRecord


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "record"
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def is_http_url(source: str) -> bool:
    """Whether a record's image is fetched over http(s) (anything else is a local path)."""
    return source.lower().startswith(("http://", "https://"))


def resolve_image(source: str, base_dir: Path) -> str:
    """An absolute path for a local image, the URL unchanged otherwise."""
    if has_scheme(source):
        return source
    path = Path(source)
    return str(path if path.is_absolute() else (base_dir / path).resolve())


def validate_record(
    data: Any, line: int, base_dir: Path | None = None
) -> ParsedRecord | RecordError:
    """Validate one raw record; images become absolute when ``base_dir`` is given."""
    raw_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(data, dict):
        return RecordError(line, f"expected a JSON object, got {type(data).__name__}")
    try:
        record = ProductRecord.model_validate(data)
    except ValidationError as exc:
        return RecordError(line, _explain(exc), str(raw_id) if raw_id is not None else None)
    if base_dir is not None:
        record = record.model_copy(
            update={"images": [resolve_image(s, base_dir) for s in record.images]}
        )
    return ParsedRecord(line, record)


def read_jsonl(path: Path) -> Iterator[ParsedRecord | RecordError]:
    """Records of a JSON Lines file; blank lines are skipped."""
    base_dir = path.resolve().parent
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                yield RecordError(number, f"invalid JSON: {exc.msg} at column {exc.colno}")
                continue
            yield validate_record(data, number, base_dir)


@dataclass(frozen=True)
class CsvMapping:
    """Which CSV column feeds which record field.

    ``columns`` maps record fields to column names (unmapped fields use the column of the
    same name). Columns named in ``attributes`` become attributes; with ``attributes`` None,
    every column not used for a field becomes one. List values (images, multi-valued
    attributes) are separated by ``|``.
    """

    columns: dict[str, str]
    attributes: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, pairs: list[str] | None, attributes: list[str] | None = None) -> CsvMapping:
        """From ``field=column`` strings (the CLI's ``--map``)."""
        columns: dict[str, str] = {}
        for pair in pairs or []:
            field, sep, column = pair.partition("=")
            field, column = field.strip(), column.strip()
            if not sep or not column:
                raise InvalidInput(f"bad column mapping {pair!r}: expected FIELD=COLUMN")
            if field not in RECORD_FIELDS or field == "attributes":
                raise InvalidInput(
                    f"unknown record field {field!r} in mapping; fields are "
                    + ", ".join(f for f in RECORD_FIELDS if f != "attributes")
                )
            columns[field] = column
        return cls(columns, tuple(attributes) if attributes is not None else None)

    def to_record(self, row: dict[str, str]) -> dict[str, Any]:
        used: set[str] = set()
        data: dict[str, Any] = {}
        for field in RECORD_FIELDS:
            if field == "attributes":
                continue
            column = self.columns.get(field, field)
            if column in row:
                used.add(column)
                value: Any = row[column]
                if field == "images":
                    value = [v.strip() for v in (value or "").split(LIST_SEPARATOR) if v.strip()]
                elif field == "price":
                    value = value.strip() if value else None
                    value = value or None
                data[field] = value
        names = (
            self.attributes if self.attributes is not None else [c for c in row if c not in used]
        )
        data["attributes"] = {
            name: [v for v in (row.get(name) or "").split(LIST_SEPARATOR) if v.strip()]
            for name in names
            if row.get(name)
        }
        return data


def read_csv(path: Path, mapping: CsvMapping | None = None) -> Iterator[ParsedRecord | RecordError]:
    """Records of a CSV file with a header row (line numbers count the header as line 1)."""
    mapping = mapping or CsvMapping({})
    base_dir = path.resolve().parent
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [
            mapping.columns.get(f, f)
            for f in ("id", "images")
            if mapping.columns.get(f, f) not in (reader.fieldnames or [])
        ]
        if missing:
            raise InvalidInput(
                f"{path}: CSV has no column {', '.join(map(repr, missing))}; map one with "
                "--map id=COLUMN / --map images=COLUMN"
            )
        for row in reader:
            line = reader.line_num
            if None in row:
                yield RecordError(line, "more values than header columns")
                continue
            yield validate_record(mapping.to_record(row), line, base_dir)


def read_catalogue(
    path: Path | str, mapping: CsvMapping | None = None
) -> Iterator[ParsedRecord | RecordError]:
    """Records of a catalogue file, by extension (``.csv`` or JSON Lines)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"catalogue file not found: {path}")
    if path.suffix.lower() in (".csv", ".tsv"):
        return read_csv(path, mapping)
    return read_jsonl(path)
