"""Hypothesis through the HTTP API on a real embedded engine: free text never breaks anything.

Arbitrary unicode (control characters, query-syntax characters, very long strings) as ``q``,
as filters and as anchor lists: every answer is a 200 or a 4xx in the one error shape, never
a 5xx. ``FUZZ_EXAMPLES`` scales the run (CI keeps it small; RELIABILITY.md has a long run).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lookalike.api.app import create_app

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
SYNTAX = [
    ":", '"', "(", ")", "[", "]", "{", "}", "^", "~", "*", "?", "\\", "/", "+", "-", "!",
    "&&", "||", " AND ", " OR ", " NOT ", "TO", "title:", "NEAR(", "'", "%", "\x00", "\n",
    "\t", "\u202e", "\ufeff", "🙂", "ß", "İ", "\u0301",
]  # fmt: skip
TEXT = st.text(st.characters(codec="utf-8"), max_size=80)
FRAGMENT = st.one_of(st.sampled_from(SYNTAX), TEXT, st.sampled_from(["red", "circle", "item"]))
QUERY = st.one_of(
    st.lists(FRAGMENT, max_size=30).map("".join),
    st.text(st.characters(codec="utf-8"), min_size=400, max_size=700),
    st.integers(1, 5000).map(lambda n: "(" * n),
)
STATUSES: Counter[int] = Counter()  # every status answered, for the figures
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def client(indexed: dict[str, object]) -> Iterator[TestClient]:
    # raise_server_exceptions=False: a 500 is an answer to count, not a test crash.
    app = create_app(indexed["settings"])  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def check(response) -> None:  # type: ignore[no-untyped-def]
    """200 with hits, or a 4xx with the one error shape; never a server error."""
    STATUSES[response.status_code] += 1
    assert response.status_code < 500, response.text
    body = response.json()
    if response.status_code == 200:
        assert isinstance(body["hits"], list)
        return
    assert 400 <= response.status_code < 500
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["code"], str) and body["error"]["message"]


@FUZZ
@given(q=QUERY)
def test_free_text_query(client: TestClient, q: str) -> None:
    response = client.get("/search", params={"q": q, "k": 5})
    check(response)
    if len(q) <= 512:
        assert response.status_code == 200, response.text


@FUZZ
@given(q=QUERY, anchors=st.one_of(st.just("p0,p1"), TEXT), filter_=TEXT)
def test_query_with_anchors_and_filters(
    client: TestClient, q: str, anchors: str, filter_: str
) -> None:
    params: dict[str, Any] = {
        "q": q,
        "anchor_ids": anchors,
        "filter": filter_,
        "brand": filter_,
        "k": 5,
    }
    check(client.get("/search", params=params))


@FUZZ
@given(product_id=TEXT.filter(str.strip), q=TEXT)
def test_similar_with_arbitrary_ids(client: TestClient, product_id: str, q: str) -> None:
    response = client.get(f"/products/{quote(product_id, safe='')}/similar", params={"color": q})
    check(response)


def test_report_statuses() -> None:
    """Runs last: the figures RELIABILITY.md quotes (with -s)."""
    if not STATUSES:
        pytest.skip("run together with the fuzz tests")
    assert not [s for s in STATUSES if s >= 500]
    print(f"fuzz: {sum(STATUSES.values())} requests, statuses {dict(sorted(STATUSES.items()))}")
