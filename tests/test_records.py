"""Catalogue input: validation, line numbers, CSV mapping, image path resolution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lookalike.errors import InvalidInput
from lookalike.records import CsvMapping, ParsedRecord, RecordError, read_catalogue


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_bad_records_reported_with_line_and_reason_rest_kept(tmp_path: Path) -> None:
    good = {"id": "a", "title": "Red dress", "images": ["img/a.jpg"], "price": 10}
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({"title": "no id", "images": ["x.jpg"]}),
        json.dumps({"id": "b", "images": []}),
        json.dumps({"id": "c", "images": ["c.jpg"], "price": -1}),
        json.dumps({"id": "d", "images": ["d.jpg"], "colour": "red"}),
        "",
        json.dumps([1, 2]),
        json.dumps({"id": 7, "images": ["https://example.com/7.jpg"], "attributes": {"size": "M"}}),
    ]
    items = list(read_catalogue(write_lines(tmp_path / "cat.jsonl", lines)))
    good_items = [i for i in items if isinstance(i, ParsedRecord)]
    errors = {e.line: e for e in items if isinstance(e, RecordError)}
    assert [i.record.id for i in good_items] == ["a", "7"]
    assert set(errors) == {2, 3, 4, 5, 6, 8}
    assert "invalid JSON" in errors[2].reason
    assert "id" in errors[3].reason
    assert "images" in errors[4].reason and errors[4].id == "b"
    assert "price" in errors[5].reason
    assert "colour: unknown field" in errors[6].reason
    assert "JSON object" in errors[8].reason
    assert str(errors[4]).startswith("line 4 (id b):")


def test_images_resolved_against_catalogue_folder_urls_kept(tmp_path: Path) -> None:
    sub = tmp_path / "shop"
    sub.mkdir()
    rec = {"id": "a", "images": ["img/a.jpg", "/abs/b.jpg", "https://cdn.example/c.jpg"]}
    (item,) = read_catalogue(write_lines(sub / "cat.jsonl", [json.dumps(rec)]))
    assert isinstance(item, ParsedRecord)
    assert item.record.images == [
        str((sub / "img/a.jpg").resolve()),
        "/abs/b.jpg",
        "https://cdn.example/c.jpg",
    ]


def test_attributes_strings_become_lists(tmp_path: Path) -> None:
    rec = {"id": "a", "images": ["a.jpg"], "attributes": {"size": "M", "tags": ["x", " y "]}}
    (item,) = read_catalogue(write_lines(tmp_path / "c.jsonl", [json.dumps(rec)]))
    assert isinstance(item, ParsedRecord)
    assert item.record.attributes == {"size": ["M"], "tags": ["x", "y"]}


def test_csv_with_mapping_and_attribute_columns(tmp_path: Path) -> None:
    csv_text = (
        "sku,name,kind,colour,cost,photos,gender,season\n"
        "1,Blue shirt,Shirts,Blue,19.5,a.jpg|b.jpg,Men,Fall\n"
        "2,Broken,Shirts,Red,notanumber,c.jpg,Men,Fall\n"
        "3,No photo,Shirts,Red,5,,Women,\n"
    )
    path = tmp_path / "cat.csv"
    path.write_text(csv_text, encoding="utf-8")
    mapping = CsvMapping.parse(
        ["id=sku", "title=name", "category=kind", "color=colour", "price=cost", "images=photos"]
    )
    items = list(read_catalogue(path, mapping))
    ok = [i for i in items if isinstance(i, ParsedRecord)]
    bad = [i for i in items if isinstance(i, RecordError)]
    assert len(ok) == 1
    rec = ok[0].record
    assert (rec.id, rec.title, rec.category, rec.color, rec.price) == (
        "1",
        "Blue shirt",
        "Shirts",
        "Blue",
        19.5,
    )
    assert [Path(p).name for p in rec.images] == ["a.jpg", "b.jpg"]
    assert rec.attributes == {"gender": ["Men"], "season": ["Fall"]}
    assert {e.line for e in bad} == {3, 4}
    assert "price" in next(e for e in bad if e.line == 3).reason

    only_gender = CsvMapping.parse(["id=sku", "images=photos"], attributes=["gender"])
    first = next(i for i in read_catalogue(path, only_gender) if isinstance(i, ParsedRecord))
    assert first.record.attributes == {"gender": ["Men"]}


def test_csv_without_id_column_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cat.csv"
    path.write_text("sku,photos\n1,a.jpg\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="--map id=COLUMN"):
        list(read_catalogue(path))


def test_bad_mapping_and_missing_file() -> None:
    with pytest.raises(InvalidInput, match="FIELD=COLUMN"):
        CsvMapping.parse(["title"])
    with pytest.raises(InvalidInput, match="unknown record field"):
        CsvMapping.parse(["colour=c"])
    with pytest.raises(InvalidInput, match="not found"):
        read_catalogue("/nonexistent/cat.jsonl")
