"""Validate OpenSearch request and response bodies against the official OpenAPI spec.

The spec (../shared/opensearch/opensearch-openapi.yaml, OpenAPI 3.1 = JSON Schema 2020-12) is
loaded once per test session; ``$ref``s resolve through a ``referencing`` registry holding the
whole document. A request is matched to its path template and method, and its body checked
against the operation's ``requestBody`` schema (bulk NDJSON as an array of lines). The spec's
schemas are open (unknown keys pass), so golden-JSON tests pin the exact bodies as well.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

SPEC_PATH = Path(
    os.environ.get(
        "OPENSEARCH_SPEC",
        Path(__file__).resolve().parents[2] / "shared" / "opensearch" / "opensearch-openapi.yaml",
    )
)
BASE = "urn:opensearch-openapi"


class SpecViolation(AssertionError):
    """A body the spec rejects (the message lists every error with its JSON path)."""


@lru_cache(maxsize=1)
def load_spec() -> dict[str, Any]:
    """The parsed spec (about 2 s with libyaml; cached for the session)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(SPEC_PATH, encoding="utf-8") as fh:
        spec: dict[str, Any] = yaml.load(fh, Loader=loader)
    return spec


@lru_cache(maxsize=1)
def _registry() -> Any:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    resource = Resource.from_contents(load_spec(), default_specification=DRAFT202012)
    return Registry().with_resource(BASE, resource)


@cache
def _validator(pointer: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator({"$ref": f"{BASE}#{pointer}"}, registry=_registry())


@lru_cache(maxsize=1)
def _routes() -> list[tuple[re.Pattern[str], str, int]]:
    routes = []
    for template in load_spec()["paths"]:
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        routes.append((re.compile(f"^{pattern}$"), template, template.count("{")))
    return routes


def operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The spec's path template and operation for a concrete request."""
    matches = sorted((n, t) for rx, t, n in _routes() if rx.match(path))
    for _, template in matches:
        op = load_spec()["paths"][template].get(method.lower())
        if op is not None:
            return template, op
    raise SpecViolation(f"{method} {path}: no such operation in the spec")


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _content_pointer(ref: str, content_type: str) -> str:
    return f"{ref.removeprefix('#')}/content/{_escape(content_type)}/schema"


def validate(pointer: str, instance: Any, what: str) -> None:
    """Raise SpecViolation listing every error of ``instance`` against the schema at pointer."""
    errors = sorted(_validator(pointer).iter_errors(instance), key=lambda e: list(e.path))
    if errors:
        lines = [f"  at /{'/'.join(map(str, e.path))}: {e.message[:300]}" for e in errors[:20]]
        raise SpecViolation(f"{what}: {len(errors)} spec error(s)\n" + "\n".join(lines))


def parse_body(path: str, body: bytes | str | None) -> Any:
    """JSON body, or NDJSON (bulk) as a list of line objects."""
    if body is None:
        return None
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    if path.rstrip("/").endswith("_bulk"):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


def validate_request(method: str, path: str, body: Any) -> str:
    """Validate a request body; returns the matched path template."""
    template, op = operation(method, path)
    ref = (op.get("requestBody") or {}).get("$ref")
    if body is None:
        if ref and load_spec()["components"]["requestBodies"][ref.split("/")[-1]].get("required"):
            raise SpecViolation(f"{method} {path}: the spec requires a body")
        return template
    if ref is None:
        raise SpecViolation(f"{method} {path}: the spec takes no body here")
    ctype = "application/x-ndjson" if isinstance(body, list) else "application/json"
    validate(_content_pointer(ref, ctype), body, f"{method} {template} request")
    if isinstance(body, list):
        validate_bulk_lines(body)
    return template


def validate_bulk_lines(lines: list[Any]) -> None:
    """Stricter than the spec's ``anyOf`` (where any object passes): pair every action line
    with its source line and validate the action against ``OperationContainer``."""
    i = 0
    while i < len(lines):
        action = lines[i]
        validate(BULK_ACTION, action, f"bulk line {i}")
        op = next(iter(action))
        if op == "delete":
            i += 1
            continue
        if i + 1 >= len(lines) or not isinstance(lines[i + 1], dict):
            raise SpecViolation(f"bulk line {i}: {op} without a source line")
        if op == "update":
            validate(BULK_UPDATE, lines[i + 1], f"bulk line {i + 1}")
        i += 2


BULK_ACTION = "/components/schemas/_core.bulk___OperationContainer"
BULK_UPDATE = "/components/schemas/_core.bulk___UpdateAction"


def validate_response(method: str, path: str, status: int, body: Any) -> None:
    """Validate a canned response against the operation's response schema for ``status``."""
    _, op = operation(method, path)
    resp = op.get("responses", {}).get(str(status))
    if resp is None or body is None or "$ref" not in resp:
        return
    name = resp["$ref"].split("/")[-1]
    if "application/json" in load_spec()["components"]["responses"][name].get("content", {}):
        validate(
            _content_pointer(resp["$ref"], "application/json"), body, f"{method} {path} {status}"
        )
