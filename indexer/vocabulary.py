"""The attribute vocabulary, persisted in the engine's metadata.

Only the process that reads a catalogue extends it (append-only); workers read it.
"""

from __future__ import annotations

from collections.abc import Iterable

from lookalike.attributes import AttributeEncoder
from lookalike.engines import Engine
from lookalike.records import ProductRecord

VOCAB_META_KEY = "attribute_vocabulary"


def load_encoder(engine: Engine) -> AttributeEncoder:
    raw = engine.get_meta(VOCAB_META_KEY)
    return AttributeEncoder.from_json(raw) if raw else AttributeEncoder()


def fit_vocabulary(engine: Engine, records: Iterable[ProductRecord]) -> AttributeEncoder:
    """Grow the stored vocabulary with these records' values and return the encoder."""
    encoder = load_encoder(engine)
    before = len(encoder)
    encoder.partial_fit(records)
    if len(encoder) != before:
        engine.set_meta(VOCAB_META_KEY, encoder.to_json())
    return encoder
