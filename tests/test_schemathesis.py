"""Schemathesis against the app's own OpenAPI schema, in process, write endpoints included.

Checks: no server errors, every response (errors too) matches the schema it declares, and
every status code is a declared one. Ingest runs queued into a Redis database of its own
with no worker (the jobs are only enqueued, then flushed); re-indexing is left out (each
call would load models and rebuild the catalogue) and is tested in tests/test_api_ingest.py.
``SCHEMATHESIS_EXAMPLES`` scales the run (examples per operation).
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from lookalike.api.app import create_app
from lookalike.settings import get_settings
from tests.conftest import TF2_MOBILENET
from tests.helpers_api import WRITE, api_records, keyed_settings

if not TF2_MOBILENET.exists():
    pytest.skip(f"{TF2_MOBILENET} is absent (../shared models)", allow_module_level=True)

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))
QUEUE_DB = 13  # no worker listens here
QUEUE_URL = f"{get_settings().redis_url.rsplit('/', 1)[0]}/{QUEUE_DB}"
ROOT = Path(tempfile.mkdtemp(prefix="lookalike-schemathesis-"))
SETTINGS = keyed_settings(
    ROOT / "data", ROOT / "catalogue", ingest_mode="queue", redis_url=QUEUE_URL, image_timeout=1
)
APP = create_app(SETTINGS)
# The admin jobs swap models or train for minutes: their own tests drive them.
EXCLUDED = {("POST", "/admin/reindex"), ("POST", "/admin/tune")}
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
for _, _path in EXCLUDED:
    schema = schema.exclude(path=_path)
SEEN: Counter[tuple[str, str, int]] = Counter()  # (method, path, status) of every call made


@pytest.fixture(scope="module", autouse=True)
def serving() -> Iterator[None]:
    """A 12-product catalogue indexed inline, then the queued app's lifespan held open."""
    try:
        redis.Redis.from_url(QUEUE_URL).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {QUEUE_URL} ({exc}); scripts/ensure-redis starts one")
    records = api_records(ROOT / "catalogue", 12)
    inline = keyed_settings(ROOT / "data", ROOT / "catalogue")
    with TestClient(create_app(inline)) as c:
        assert c.post("/products", json=records, headers=WRITE).status_code == 200
    with TestClient(APP):
        yield
    redis.Redis.from_url(QUEUE_URL).flushdb()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case: Any) -> None:
    response = case.call_and_validate(
        headers=WRITE,
        checks=[not_a_server_error, response_schema_conformance, status_code_conformance],
    )
    SEEN[(case.method.upper(), case.path, response.status_code)] += 1


def test_schema_declares_the_error_shape() -> None:
    spec = APP.openapi()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "4XX" in responses and "5XX" in responses, (method, path)
            assert "HTTPValidationError" not in str(responses), (method, path)


def test_every_operation_was_exercised() -> None:
    """Runs after the generated cases: each operation was called, writes succeeded too."""
    if not SEEN:
        pytest.skip("run together with test_api_conforms_to_its_schema")
    operations = {(m.upper(), p) for p, ops in APP.openapi()["paths"].items() for m in ops}
    called = {(m, p) for m, p, _ in SEEN}
    assert operations - EXCLUDED <= called, sorted(operations - EXCLUDED - called)
    ok = {(m, p) for m, p, status in SEEN if status < 300}
    assert ("POST", "/products") in ok and ("GET", "/search") in ok, sorted(ok)
    print(
        f"schemathesis: {sum(SEEN.values())} calls, statuses {sorted(Counter(s for *_, s in SEEN))}"
    )
