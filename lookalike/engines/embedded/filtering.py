"""Filters compiled once into a small tree of tokens and price bounds.

Both derived indexes (tantivy and the in-memory postings) evaluate the same compiled tree,
so they cannot disagree on field names or value normalisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lookalike.engines.embedded.rows import token
from lookalike.errors import InvalidFilter
from lookalike.filters import And, Filter, Not, Or, Range, Term, Terms, check_field, normalize_value


@dataclass(frozen=True)
class TokenSet:
    """Matches rows holding any of these ``field=value`` tokens (none: matches nothing)."""

    tokens: tuple[str, ...]


@dataclass(frozen=True)
class PriceRange:
    """Matches rows whose price lies within the bounds (a missing price never matches)."""

    lower: float | None
    lower_inclusive: bool
    upper: float | None
    upper_inclusive: bool

    @property
    def empty(self) -> bool:
        if self.lower is None or self.upper is None:
            return False
        if self.lower == self.upper:
            return not (self.lower_inclusive and self.upper_inclusive)
        return self.lower > self.upper


@dataclass(frozen=True)
class AllOf:
    items: tuple[Compiled, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Compiled, ...]


@dataclass(frozen=True)
class NoneOf:
    item: Compiled


Compiled = TokenSet | PriceRange | AllOf | AnyOf | NoneOf


def _bound(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidFilter(f"range bound {name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidFilter(f"range bound {name} must be a number, got {value!r}") from None
    if math.isnan(number):
        raise InvalidFilter(f"range bound {name} must not be NaN")
    return number


def _tighter(
    a: float | None, a_incl: bool, b: float | None, b_incl: bool, lower: bool
) -> tuple[float | None, bool]:
    """The stricter of two bounds on the same side."""
    if a is None:
        return b, b_incl or b is None
    if b is None:
        return a, a_incl
    if a == b:
        return a, a_incl and b_incl
    if lower:
        return (a, a_incl) if a > b else (b, b_incl)
    return (a, a_incl) if a < b else (b, b_incl)


def _compile_range(node: Range) -> PriceRange:
    check_field(node.field, numeric=True)
    lo, lo_incl = _tighter(_bound(node.gte, "gte"), True, _bound(node.gt, "gt"), False, lower=True)
    hi, hi_incl = _tighter(_bound(node.lte, "lte"), True, _bound(node.lt, "lt"), False, lower=False)
    return PriceRange(lo, lo_incl, hi, hi_incl)


def compile_filter(node: Filter) -> Compiled:
    """Validate field names and normalise values; raises InvalidFilter on anything else."""
    if isinstance(node, Term):
        return TokenSet((token(check_field(node.field), normalize_value(node.value)),))
    if isinstance(node, Terms):
        field = check_field(node.field)
        if isinstance(node.values, str):
            raise InvalidFilter(f"terms filter on {field!r} needs a tuple of values")
        return TokenSet(tuple(dict.fromkeys(token(field, normalize_value(v)) for v in node.values)))
    if isinstance(node, Range):
        return _compile_range(node)
    if isinstance(node, And):
        return AllOf(tuple(compile_filter(i) for i in node.items))
    if isinstance(node, Or):
        return AnyOf(tuple(compile_filter(i) for i in node.items))
    if isinstance(node, Not):
        return NoneOf(compile_filter(node.item))
    raise InvalidFilter(f"unknown filter node {node!r}")


def required_tokens(node: Compiled | None, fields: tuple[str, ...]) -> tuple[str, ...] | None:
    """Tokens of one field among ``fields`` such that every match holds one of them (the
    filter's category, where it has one at the top level), or None."""
    if isinstance(node, TokenSet):
        names = {t.split("=", 1)[0] for t in node.tokens}
        if node.tokens and len(names) == 1 and names <= set(fields):
            return node.tokens
        return None
    if isinstance(node, AllOf):
        for item in node.items:
            found = required_tokens(item, fields)
            if found is not None:
                return found
    return None
