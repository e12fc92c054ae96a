"""The fashion-10k converter: brands read from the product names."""

from __future__ import annotations

from lookalike.datasets import fashion_brands, fashion_records
from tests.conftest import FASHION, needs_shared


def test_brands_are_the_leading_words_before_the_gender() -> None:
    names = [
        "Peter England Men Blue Shirt",
        "Peter England Men Party Jeans",
        "Peter England Men Black Belt",
        "Gini and Jony Boys Red Tee",
        "Gini and Jony Girls Blue Dress",
        "Gini and Jony Kids Cap",
        "Gini and Jony Boy's Kaleb White Brown",  # rare spelling: snaps to the known brand
        "Titan Watch",  # no gender word: the first word
    ]
    assert fashion_brands(names) == [
        "Peter England",
        "Peter England",
        "Peter England",
        "Gini and Jony",
        "Gini and Jony",
        "Gini and Jony",
        "Gini and Jony",
        "Titan",
    ]


def test_fashion_records_carry_a_brand(tmp_path) -> None:  # type: ignore[no-untyped-def]
    records = fashion_records(needs_shared(FASHION), tmp_path, limit=200)
    assert len(records) == 200
    assert all(r["brand"] for r in records)
    # the canonical spelling of a brand, matched without case ("CASIO" -> "Casio")
    assert all(str(r["title"]).lower().startswith(str(r["brand"]).lower()) for r in records)
