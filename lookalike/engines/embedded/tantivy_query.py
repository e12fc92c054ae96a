"""tantivy schema and programmatic query building (user text is never parsed as syntax).

``parse_query`` fails on or reinterprets inputs such as ``men's shoes``, ``t-shirt``,
``-red``, ``color:red`` or ``NEAR(`` (pitfall 1 in the measurements). Instead the text is
tokenised with the very analyzer the index uses and each token becomes a term query.
"""

from __future__ import annotations

import tantivy

from lookalike.engines.embedded.filtering import (
    AllOf,
    AnyOf,
    Compiled,
    NoneOf,
    PriceRange,
    TokenSet,
)

ANALYZER = "lookalike_text"
MAX_QUERY_TOKENS = 64
# BM25 fields and their boosts: a title match counts more than one in the description.
TEXT_FIELDS: dict[str, float] = {
    "title": 2.0,
    "brand_text": 1.5,
    "category_text": 1.2,
    "color_text": 1.2,
    "attributes_text": 1.0,
    "description": 1.0,
}


def analyzer() -> tantivy.TextAnalyzer:
    """Split on non-alphanumerics, drop tokens over 40 bytes, lowercase, fold, stem."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def build_schema() -> tantivy.Schema:
    """id (stored), ord (stable order), BM25 text fields, ``kw`` filter tokens, price."""
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_integer_field("ord", indexed=False, fast=True)  # signed: pitfall 8
    for name in TEXT_FIELDS:
        sb.add_text_field(name, tokenizer_name=ANALYZER, index_option="freq")
    sb.add_text_field("kw", tokenizer_name="raw", index_option="basic")
    sb.add_float_field("price", indexed=True, fast=True)
    return sb.build()


def query_tokens(text_analyzer: tantivy.TextAnalyzer, text: str) -> list[str]:
    """Distinct analysed tokens of user text, in order, capped."""
    return list(dict.fromkeys(text_analyzer.analyze(text)))[:MAX_QUERY_TOKENS]


def text_query(
    schema: tantivy.Schema, text_analyzer: tantivy.TextAnalyzer, text: str
) -> tantivy.Query | None:
    """OR of term queries over every text field; None when the text has no tokens."""
    clauses: list[tuple[tantivy.Occur, tantivy.Query]] = []
    for tok in query_tokens(text_analyzer, text):
        for name, boost in TEXT_FIELDS.items():
            q = tantivy.Query.term_query(schema, name, tok)
            if boost != 1.0:
                q = tantivy.Query.boost_query(q, boost)
            clauses.append((tantivy.Occur.Should, q))
    return tantivy.Query.boolean_query(clauses) if clauses else None


def _range(schema: tantivy.Schema, r: PriceRange) -> tantivy.Query:
    if r.empty:
        return tantivy.Query.empty_query()
    if r.lower is None and r.upper is None:
        return tantivy.Query.exists_query("price")
    return tantivy.Query.range_query(
        schema,
        "price",
        tantivy.FieldType.Float,
        lower_bound=r.lower,
        upper_bound=r.upper,
        include_lower=r.lower_inclusive,
        include_upper=r.upper_inclusive,
    )


def filter_query(schema: tantivy.Schema, node: Compiled) -> tantivy.Query:
    """The compiled filter as tantivy clauses (negation against all documents)."""
    Q, Occur = tantivy.Query, tantivy.Occur
    if isinstance(node, TokenSet):
        if not node.tokens:
            return Q.empty_query()
        if len(node.tokens) == 1:
            return Q.term_query(schema, "kw", node.tokens[0])
        return Q.term_set_query(schema, "kw", list(node.tokens))
    if isinstance(node, PriceRange):
        return _range(schema, node)
    if isinstance(node, AllOf):
        if not node.items:
            return Q.all_query()
        return Q.boolean_query([(Occur.Must, filter_query(schema, i)) for i in node.items])
    if isinstance(node, AnyOf):
        if not node.items:
            return Q.empty_query()
        return Q.boolean_query([(Occur.Should, filter_query(schema, i)) for i in node.items])
    if isinstance(node, NoneOf):
        return Q.boolean_query(
            [(Occur.Must, Q.all_query()), (Occur.MustNot, filter_query(schema, node.item))]
        )
    raise TypeError(f"unknown compiled filter {node!r}")
