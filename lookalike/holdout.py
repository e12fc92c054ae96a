"""The seeded train/test split by product id that `lookalike eval --holdout` and `lookalike tune`
share: a product's side depends only on its id and the seed, never on catalogue order, so the
same product stays on the same side when the catalogue grows or is read in another order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

TEST_SHARE = 0.2


def is_test(product_id: str, seed: int = 0, test_share: float = TEST_SHARE) -> bool:
    """Whether a product is on the test side: its seeded hash falls in the first ``test_share``."""
    digest = hashlib.sha256(f"{seed}\x00{product_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < test_share


def split(
    ids: Sequence[str], seed: int = 0, test_share: float = TEST_SHARE
) -> tuple[list[str], list[str]]:
    """``(train, test)`` ids, each sorted."""
    train: list[str] = []
    test: list[str] = []
    for pid in sorted(ids):
        (test if is_test(pid, seed, test_share) else train).append(pid)
    return train, test
