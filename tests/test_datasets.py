"""The fashion-10k converter: brands read from the product names."""

from __future__ import annotations

from collections import Counter

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


def test_brand_spelling_first_words_and_rare_brands() -> None:
    names = [
        "CASIO Men Black Watch",
        "CASIO Unisex Dial Watch",
        "Casio Outdoor Men Watch",  # a spelling seen once: the brand as most names spell it
        "CASIO Women Silver Watch",
        "TOUS Women Eau De Toilette",
        "TOUS Women Eau De Parfum",
        "Tous In Heaven Men Perfume",  # 3 names start with TOUS: that word, not "Tous In Heaven"
        "Yves Saint Laurent Men Body Kouros",  # seen once: the words before the gender
        "",
    ]
    assert fashion_brands(names) == ["CASIO"] * 4 + ["TOUS"] * 3 + ["Yves Saint Laurent", ""]


def test_fashion_10k_brands_are_one_spelling_each() -> None:
    import csv

    with open(needs_shared(FASHION) / "styles.csv", encoding="utf-8", newline="") as fh:
        names = [row["productDisplayName"] for row in csv.DictReader(fh)]
    brands = fashion_brands(names)
    distinct = set(brands) - {""}
    assert len({b.lower() for b in distinct}) == len(distinct)  # no "Casio" beside "CASIO"
    assert all(n.lower().startswith(b.lower()) for n, b in zip(names, brands, strict=True))
    top = [b for b, _ in Counter(brands).most_common(5)]
    assert {"Puma", "Nike", "United Colors of Benetton"} <= set(top)
