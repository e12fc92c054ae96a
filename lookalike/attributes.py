"""One-hot (multi-hot) encoding of a product's structured fields, for attribute similarity.

Tokens are ``"<field>=<normalised value>"`` for ``category``, ``color``, ``brand`` and
``attributes.<key>`` for each attribute key. The vocabulary is learned from the catalogue and is
append-only: a token keeps its index forever, so vectors stored before the vocabulary grew stay
valid and are compared after zero-padding (see :func:`pad` and :func:`similarity`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from lookalike.errors import ConfigError
from lookalike.filters import ATTRIBUTE_PREFIX, KEYWORD_FIELDS, normalize_value

if TYPE_CHECKING:
    from lookalike.engines.base import Engine

FORMAT_VERSION = 1


def _values(raw: Any) -> list[str]:
    """A field's values as a list: None -> [], a scalar -> [it], a list/tuple/set -> its items."""
    if raw is None:
        return []
    if isinstance(raw, (list, tuple, set, frozenset)):
        return [str(v) for v in raw if v is not None]
    return [str(raw)]


def _get(item: Any, field: str) -> Any:
    return item.get(field) if isinstance(item, Mapping) else getattr(item, field, None)


def tokens(
    item: Any = None,
    *,
    category: Any = None,
    color: Any = None,
    brand: Any = None,
    attributes: Mapping[str, Any] | None = None,
) -> list[str]:
    """The tokens of one product, from an object/mapping with those fields or plain arguments.

    Plain arguments override the object's fields. Empty values are skipped; order is stable.
    """
    given = {"category": category, "color": color, "brand": brand}
    fields: dict[str, Any] = {}
    for field in KEYWORD_FIELDS:
        value = given[field]
        fields[field] = value if value is not None or item is None else _get(item, field)
    attrs = attributes if attributes is not None or item is None else _get(item, "attributes")

    out: list[str] = []
    seen: set[str] = set()

    def add(field: str, raw: Any) -> None:
        for value in _values(raw):
            norm = normalize_value(value)
            token = f"{field}={norm}"
            if norm and token not in seen:
                seen.add(token)
                out.append(token)

    for field in KEYWORD_FIELDS:
        add(field, fields[field])
    for key, raw in (attrs or {}).items():
        key_norm = normalize_value(key)
        if key_norm:
            add(ATTRIBUTE_PREFIX + key_norm, raw)
    return out


class AttributeEncoder:
    """Learns an append-only token vocabulary and encodes products as L2-normalised multi-hot rows.

    Not thread-safe while fitting; encoding concurrently with no fit running is fine.
    """

    def __init__(self, vocab: Iterable[str] = ()) -> None:
        self._index: dict[str, int] = {}
        self._vocab: list[str] = []
        self._add(vocab)

    @property
    def vocab(self) -> list[str]:
        """Tokens in index order (a copy)."""
        return list(self._vocab)

    @property
    def dim(self) -> int:
        return len(self._vocab)

    @property
    def tag(self) -> str:
        """Labels stored attribute vectors. Stable while the vocabulary grows: growth is
        append-only, so older (shorter) vectors stay comparable after zero-padding."""
        return f"attributes-onehot@{FORMAT_VERSION}"

    def __len__(self) -> int:
        return len(self._vocab)

    def index(self, token: str) -> int | None:
        """A token's position, or None when unseen."""
        return self._index.get(token)

    def _add(self, new_tokens: Iterable[str]) -> list[str]:
        added = []
        for token in new_tokens:
            if token not in self._index:
                self._index[token] = len(self._vocab)
                self._vocab.append(token)
                added.append(token)
        return added

    def partial_fit(self, records: Iterable[Any]) -> list[str]:
        """Append the unseen tokens of ``records`` (sorted, so indices do not depend on order).

        Returns the tokens added; existing indices never move.
        """
        found: set[str] = set()
        for record in records:
            found.update(tokens(record))
        return self._add(sorted(found - self._index.keys()))

    def fit(self, records: Iterable[Any]) -> AttributeEncoder:
        """Learn the vocabulary of a catalogue. Append-only: never drops or reorders tokens."""
        self.partial_fit(records)
        return self

    def encode_indices(self, item: Any = None, **fields: Any) -> list[int]:
        """Sorted indices of a product's known tokens (the sparse form); unseen ones are ignored."""
        return sorted(i for t in tokens(item, **fields) if (i := self._index.get(t)) is not None)

    def encode(self, item: Any = None, **fields: Any) -> np.ndarray:
        """float32 ``[len(vocab)]`` multi-hot row, L2-normalised (all zeros when nothing is known).

        Pass a record (any object or mapping with category/color/brand/attributes) or the plain
        keyword arguments ``category``, ``color``, ``brand``, ``attributes``.
        """
        vector = np.zeros(self.dim, np.float32)
        hot = self.encode_indices(item, **fields)
        if hot:
            vector[hot] = 1.0 / np.sqrt(len(hot))
        return vector

    def encode_many(self, items: Iterable[Any]) -> np.ndarray:
        """float32 ``[n, len(vocab)]``, one encoded row per item."""
        rows = [self.encode(item) for item in items]
        return np.stack(rows) if rows else np.zeros((0, self.dim), np.float32)

    def to_json(self) -> str:
        """The vocabulary as a JSON string (stored by engines as a meta value)."""
        return json.dumps({"version": FORMAT_VERSION, "vocab": self._vocab}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> AttributeEncoder:
        """Rebuild an encoder saved by :meth:`to_json`; raises ConfigError on bad data."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"attribute vocabulary is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise ConfigError("attribute vocabulary has an unknown format version")
        vocab = data.get("vocab")
        if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
            raise ConfigError("attribute vocabulary must be a list of strings")
        if len(set(vocab)) != len(vocab):
            raise ConfigError("attribute vocabulary has duplicate tokens")
        return cls(vocab)


def pad(vector: np.ndarray, dim: int) -> np.ndarray:
    """Zero-pad a vector stored under a smaller (older) vocabulary to ``dim`` entries."""
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    if vector.shape[0] > dim:
        raise ValueError(f"vector has {vector.shape[0]} entries, more than dim={dim}")
    if vector.shape[0] == dim:
        return vector
    return np.concatenate([vector, np.zeros(dim - vector.shape[0], np.float32)])


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two encoded rows, possibly of different (vocabulary) lengths."""
    dim = max(np.asarray(a).size, np.asarray(b).size)
    return float(np.dot(pad(a, dim), pad(b, dim)))


# The attribute vocabulary, persisted in the engine's metadata. Only the process that reads a
# catalogue (or enqueues it) extends it, append-only; Celery workers only read it.
VOCAB_META_KEY = "attribute_vocabulary"


def load_encoder(engine: Engine) -> AttributeEncoder:
    """The engine's stored vocabulary (empty when none is stored yet)."""
    raw = engine.get_meta(VOCAB_META_KEY)
    return AttributeEncoder.from_json(raw) if raw else AttributeEncoder()


def fit_vocabulary(engine: Engine, records: Iterable[Any]) -> AttributeEncoder:
    """Grow the stored vocabulary with these records' values and return the encoder."""
    encoder = load_encoder(engine)
    before = len(encoder)
    encoder.partial_fit(records)
    if len(encoder) != before:
        engine.set_meta(VOCAB_META_KEY, encoder.to_json())
    return encoder
