"""Filter expressions shared by every engine: term, terms, range, and boolean combinations.

Keyword fields are ``brand``, ``category``, ``color`` and ``attributes.<key>``; the only
numeric field is ``price``. Term matching is case-insensitive (values are compared after
:func:`normalize_value`), so engines index keyword values through the same function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias

from lookalike.errors import InvalidFilter

KEYWORD_FIELDS = ("brand", "category", "color")
NUMERIC_FIELDS = ("price",)
ATTRIBUTE_PREFIX = "attributes."


def normalize_value(value: str) -> str:
    """The form in which keyword values are indexed and compared."""
    return " ".join(str(value).split()).casefold()


@dataclass(frozen=True)
class Term:
    field: str
    value: str


@dataclass(frozen=True)
class Terms:
    field: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Range:
    field: str
    gte: float | None = None
    lte: float | None = None
    gt: float | None = None
    lt: float | None = None


@dataclass(frozen=True)
class And:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    item: Filter


Filter: TypeAlias = Term | Terms | Range | And | Or | Not


def check_field(field: str, numeric: bool = False) -> str:
    """Return the canonical field name, or raise InvalidFilter for an unknown one."""
    if numeric:
        if field not in NUMERIC_FIELDS:
            raise InvalidFilter(
                f"range filters apply to {', '.join(NUMERIC_FIELDS)}, not {field!r}", field=field
            )
        return field
    if field in KEYWORD_FIELDS:
        return field
    if field.startswith(ATTRIBUTE_PREFIX) and len(field) > len(ATTRIBUTE_PREFIX):
        return field
    if field in NUMERIC_FIELDS:
        raise InvalidFilter(f"{field!r} is numeric: use a range such as {field}<=100", field=field)
    if re.fullmatch(r"[A-Za-z0-9_\-]+", field):
        # A bare name that is not a document field is taken as an attribute key.
        return ATTRIBUTE_PREFIX + field
    raise InvalidFilter(f"unknown filter field {field!r}", field=field)


_ARG = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(>=|<=|!=|=|>|<)\s*(.*?)\s*$")


def parse_filter_arg(arg: str) -> Filter:
    """Parse one ``FIELD=VALUE`` style argument.

    ``color=Blue`` (term), ``color=Blue,Navy Blue`` (terms), ``color!=Blue`` (not),
    ``price>=10``, ``price<100`` (range).
    """
    m = _ARG.match(arg)
    if not m:
        raise InvalidFilter(
            f"cannot parse filter {arg!r}: expected FIELD=VALUE, FIELD!=VALUE or price>=N", arg=arg
        )
    field, op, raw = m.groups()
    if op in (">=", "<=", ">", "<"):
        field = check_field(field, numeric=True)
        try:
            number = float(raw)
        except ValueError:
            raise InvalidFilter(f"{field} needs a number, got {raw!r}", arg=arg) from None
        key = {">=": "gte", "<=": "lte", ">": "gt", "<": "lt"}[op]
        return Range(field, **{key: number})
    field = check_field(field)
    values = tuple(v.strip() for v in raw.split(",") if v.strip())
    if not values:
        raise InvalidFilter(f"filter {arg!r} has no value", arg=arg)
    node: Filter = Term(field, values[0]) if len(values) == 1 else Terms(field, values)
    return Not(node) if op == "!=" else node


def parse_filter_args(args: list[str] | tuple[str, ...] | None) -> Filter | None:
    """Combine several arguments with AND; None when there are none."""
    if not args:
        return None
    nodes = tuple(parse_filter_arg(a) for a in args)
    return nodes[0] if len(nodes) == 1 else And(nodes)


def range_matches(node: Range, value: float | None) -> bool:
    """Whether a numeric value satisfies a range (a missing value never does)."""
    if value is None:
        return False
    return not (
        (node.gte is not None and value < node.gte)
        or (node.lte is not None and value > node.lte)
        or (node.gt is not None and value <= node.gt)
        or (node.lt is not None and value >= node.lt)
    )


def matches(node: Filter, doc_terms: dict[str, set[str]], price: float | None) -> bool:
    """Reference evaluation of a filter against one document (used by tests and small paths).

    ``doc_terms`` maps a keyword field to the document's normalised values for it.
    """
    if isinstance(node, Term):
        return normalize_value(node.value) in doc_terms.get(node.field, set())
    if isinstance(node, Terms):
        have = doc_terms.get(node.field, set())
        return any(normalize_value(v) in have for v in node.values)
    if isinstance(node, Range):
        return range_matches(node, price)
    if isinstance(node, And):
        return all(matches(i, doc_terms, price) for i in node.items)
    if isinstance(node, Or):
        return any(matches(i, doc_terms, price) for i in node.items)
    if isinstance(node, Not):
        return not matches(node.item, doc_terms, price)
    raise InvalidFilter(f"unknown filter node {node!r}")
