"""Filter parsing (``FIELD=VALUE`` arguments) and the reference evaluator ``matches``."""

from __future__ import annotations

import pytest

from lookalike.errors import InvalidFilter
from lookalike.filters import (
    And,
    Not,
    Or,
    Range,
    Term,
    Terms,
    check_field,
    matches,
    normalize_value,
    parse_filter_arg,
    parse_filter_args,
)


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("color=Blue", Term("color", "Blue")),
        ("  color = Blue  ", Term("color", "Blue")),
        ("color=Blue,Navy Blue", Terms("color", ("Blue", "Navy Blue"))),
        ("color=Blue, ,Red,", Terms("color", ("Blue", "Red"))),
        ("color=Blue,", Term("color", "Blue")),
        ("color!=Blue", Not(Term("color", "Blue"))),
        ("brand!=Acme,Globex", Not(Terms("brand", ("Acme", "Globex")))),
        ("price>=10", Range("price", gte=10.0)),
        ("price<=99.5", Range("price", lte=99.5)),
        ("price>0", Range("price", gt=0.0)),
        ("price<1e3", Range("price", lt=1000.0)),
        ("material=cotton", Term("attributes.material", "cotton")),
        ("attributes.size=M", Term("attributes.size", "M")),
        ("sleeve-length=long", Term("attributes.sleeve-length", "long")),
        ("category=Shoes & Boots", Term("category", "Shoes & Boots")),
        ("color=a=b", Term("color", "a=b")),
    ],
)
def test_parse_filter_arg(arg: str, expected: object) -> None:
    assert parse_filter_arg(arg) == expected


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("color", "cannot parse"),
        ("=red", "cannot parse"),
        ("", "cannot parse"),
        ("color=", "has no value"),
        ("color= , ", "has no value"),
        ("price=10", "numeric"),
        ("price!=10", "numeric"),
        ("color>=3", "range filters apply to price"),
        ("price>=cheap", "needs a number"),
        ("attributes.=x", "unknown filter field"),
        ("bad.field=x", "unknown filter field"),
    ],
)
def test_parse_filter_arg_errors(arg: str, message: str) -> None:
    with pytest.raises(InvalidFilter, match=message):
        parse_filter_arg(arg)


def test_parse_filter_args_combines_with_and() -> None:
    assert parse_filter_args(None) is None
    assert parse_filter_args([]) is None
    assert parse_filter_args(["color=red"]) == Term("color", "red")
    assert parse_filter_args(("color=red", "price<50")) == And(
        (Term("color", "red"), Range("price", lt=50.0))
    )


def test_check_field() -> None:
    assert check_field("brand") == "brand"
    assert check_field("attributes.fit") == "attributes.fit"
    assert check_field("fit") == "attributes.fit"
    assert check_field("price", numeric=True) == "price"
    with pytest.raises(InvalidFilter):
        check_field("price")
    with pytest.raises(InvalidFilter):
        check_field("brand", numeric=True)


def test_normalize_value() -> None:
    assert normalize_value("  Navy   Blue ") == "navy blue"
    assert normalize_value("STRASSE") == normalize_value("straße")
    assert normalize_value("a\tb\nc") == "a b c"


DOC = {"color": {"navy blue"}, "brand": {"acme"}, "attributes.material": {"cotton", "linen"}}


@pytest.mark.parametrize(
    ("node", "price", "expected"),
    [
        (Term("color", "Navy  BLUE"), 10.0, True),
        (Term("color", "blue"), 10.0, False),
        (Term("category", "shoes"), 10.0, False),
        (Terms("attributes.material", ("wool", "LINEN")), 10.0, True),
        (Terms("attributes.material", ()), 10.0, False),
        (Range("price", gte=10), 10.0, True),
        (Range("price", gt=10), 10.0, False),
        (Range("price", lte=10, gte=5), 10.0, True),
        (Range("price", lt=10), 10.0, False),
        (Range("price"), 10.0, True),
        (Range("price", gte=0), None, False),
        (Not(Range("price", gte=0)), None, True),
        (Not(Term("category", "shoes")), None, True),
        (And((Term("brand", "acme"), Range("price", lt=20))), 10.0, True),
        (And((Term("brand", "acme"), Range("price", lt=5))), 10.0, False),
        (And(()), 10.0, True),
        (Or((Term("brand", "other"), Term("color", "navy blue"))), 10.0, True),
        (Or(()), 10.0, False),
        (Not(Or((Term("brand", "other"), Term("brand", "acme")))), 10.0, False),
    ],
)
def test_matches(node: object, price: float | None, expected: bool) -> None:
    assert matches(node, DOC, price) is expected  # type: ignore[arg-type]


def test_matches_rejects_unknown_nodes() -> None:
    with pytest.raises(InvalidFilter):
        matches("color=red", DOC, None)  # type: ignore[arg-type]
