"""AttributeEncoder: vocabulary learning, multi-hot encoding, append-only growth, persistence."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from lookalike.attributes import AttributeEncoder, pad, similarity, tokens
from lookalike.errors import ConfigError


@dataclass
class Product:
    """Stands in for ProductRecord: only the attributes the encoder reads."""

    category: str | None = None
    color: str | None = None
    brand: str | None = None
    attributes: dict[str, list[str]] = field(default_factory=dict)
    title: str = "ignored"


CATALOGUE: list[Product | dict[str, object]] = [
    Product("Shirts", "Navy  Blue", "Peter England", {"Fabric": ["Cotton"], "fit": ["Slim"]}),
    Product("Jeans", "Blue", "Levis", {"fabric": ["Denim", "Cotton"]}),
    {"category": "Watches", "color": "Black", "brand": None, "attributes": {}},
]


def test_tokens_are_normalised_and_multi_hot() -> None:
    assert tokens(CATALOGUE[0]) == [  # fields in filters.KEYWORD_FIELDS order, then attributes
        "brand=peter england",
        "category=shirts",
        "color=navy blue",
        "attributes.fabric=cotton",
        "attributes.fit=slim",
    ]
    assert tokens(CATALOGUE[1])[-2:] == ["attributes.fabric=denim", "attributes.fabric=cotton"]
    assert tokens(CATALOGUE[2]) == ["category=watches", "color=black"]  # mappings work too
    assert tokens(category=" T-Shirts ", color=["Red", "red", ""], attributes={"Size": "M"}) == [
        "category=t-shirts",
        "color=red",
        "attributes.size=m",
    ]
    # plain arguments override the object's fields
    assert "color=green" in tokens(CATALOGUE[0], color="Green")
    assert "color=navy blue" not in tokens(CATALOGUE[0], color="Green")


def test_fit_and_encode() -> None:
    enc = AttributeEncoder().fit(CATALOGUE)
    assert len(enc) == enc.dim == len(set().union(*(tokens(p) for p in CATALOGUE)))
    assert enc.vocab == sorted(enc.vocab)  # one fit call adds its tokens in sorted order
    row = enc.encode(CATALOGUE[1])
    assert row.dtype == np.float32 and row.shape == (enc.dim,)
    assert np.count_nonzero(row) == 5 and np.isclose(np.linalg.norm(row), 1.0)
    for token in tokens(CATALOGUE[1]):
        index = enc.index(token)
        assert index is not None and row[index] > 0
    same = enc.encode(
        category="jeans", color="BLUE", brand="levis", attributes={"fabric": ["Denim", "Cotton"]}
    )
    np.testing.assert_array_equal(same, row)
    assert similarity(enc.encode(CATALOGUE[0]), row) > similarity(enc.encode(CATALOGUE[2]), row)


def test_unseen_values_are_ignored() -> None:
    enc = AttributeEncoder().fit(CATALOGUE)
    row = enc.encode(category="Shirts", color="Chartreuse", attributes={"pattern": ["Paisley"]})
    assert np.count_nonzero(row) == 1 and row[enc.index("category=shirts")] == 1.0
    assert not enc.encode(category="Unknown").any()
    assert enc.encode().shape == (enc.dim,)
    assert len(enc) == len(AttributeEncoder().fit(CATALOGUE))  # encoding never learns


def test_growth_is_append_only() -> None:
    enc = AttributeEncoder().fit(CATALOGUE[:1])
    before = enc.vocab
    old_row = enc.encode(CATALOGUE[0])
    added = enc.partial_fit(CATALOGUE[1:])
    assert enc.vocab[: len(before)] == before and enc.vocab[len(before) :] == added
    assert "attributes.fabric=cotton" not in added  # already known
    new_row = enc.encode(CATALOGUE[0])
    assert enc.tag == AttributeEncoder().tag  # growth does not invalidate stored vectors
    assert new_row.shape[0] > old_row.shape[0]
    np.testing.assert_array_equal(pad(old_row, enc.dim), new_row)
    assert similarity(old_row, new_row) == pytest.approx(1.0)
    enc.fit(CATALOGUE[:1])  # re-fitting never drops or reorders
    assert enc.vocab[: len(before)] == before
    with pytest.raises(ValueError):
        pad(new_row, 2)


def test_json_round_trip() -> None:
    enc = AttributeEncoder().fit(CATALOGUE)
    enc.partial_fit([Product("Sarees", "Mauve", "Fabindia", {"fabric": ["Silk"]})])
    back = AttributeEncoder.from_json(enc.to_json())
    assert back.vocab == enc.vocab
    for item in CATALOGUE:
        np.testing.assert_array_equal(back.encode(item), enc.encode(item))
    assert AttributeEncoder.from_json(AttributeEncoder().to_json()).dim == 0
    assert "ö" in AttributeEncoder(["brand=zöe"]).to_json()


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"version": 2, "vocab": []}',
        '{"version": 1, "vocab": "a"}',
        '{"version": 1, "vocab": ["a", 1]}',
        '{"version": 1, "vocab": ["a", "a"]}',
    ],
)
def test_bad_json_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        AttributeEncoder.from_json(text)


def test_encode_many() -> None:
    enc = AttributeEncoder().fit(CATALOGUE)
    rows = enc.encode_many(CATALOGUE)
    assert rows.shape == (3, enc.dim) and rows.dtype == np.float32
    assert enc.encode_many([]).shape == (0, enc.dim)
    assert enc.encode_indices(CATALOGUE[2]) == sorted(
        [enc.index("category=watches"), enc.index("color=black")]  # type: ignore[type-var]
    )
