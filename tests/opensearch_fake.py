"""An opensearch-py connection that validates every request body against the spec and
answers from a tiny in-memory cluster (documents, versions, aliases; no real search).

Responses are validated against the spec's response schemas too, so the canned answers the
adapter is tested with have the shape a real cluster returns.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from opensearchpy import Connection

from tests.opensearch_spec import parse_body, validate_request, validate_response

Json = dict[str, Any]
SHARDS = {"total": 1, "successful": 1, "failed": 0}


class MiniCluster:
    """Just enough cluster state for the adapter's writes and reads."""

    def __init__(self) -> None:
        self.indices: dict[str, Json] = {}
        self.aliases: dict[str, set[str]] = {}
        self.requests: list[tuple[str, str, Json, Any]] = []
        self.search_hits: Callable[[str, Json], list[Json]] | None = None
        self.throttle_bulk = 0  # answer this many bulk items with 429 first

    def resolve(self, name: str) -> list[str]:
        out: list[str] = []
        for part in name.split(","):
            if part in self.indices:
                out.append(part)
            out.extend(sorted(self.aliases.get(part, ())))
        return out

    def docs(self, name: str) -> dict[str, tuple[int, Json]]:
        found = self.resolve(name)
        return self.indices[found[0]]["docs"] if found else {}

    # -- request dispatch -------------------------------------------------------------------
    def answer(self, method: str, path: str, params: Json, body: Any) -> tuple[int, Any]:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if path == "/_bulk":
            return 200, self.bulk(body)
        if path == "/_aliases":
            for action in body["actions"]:
                ((kind, spec),) = action.items()
                group = self.aliases.setdefault(spec["alias"], set())
                (group.add if kind == "add" else group.discard)(spec["index"])
            return 200, {"acknowledged": True}
        if parts[0] == "_alias":
            found = {i: {"aliases": {parts[1]: {}}} for i in self.aliases.get(parts[1], ())}
            return (200 if found else 404), (found if method == "GET" else None)
        if len(parts) == 1:
            return self.index_op(method, parts[0], body)
        name, op = parts[0], parts[1]
        if op == "_mapping":
            return self.mapping(method, name, body)
        if op == "_mget":
            return 200, {"docs": [self.fetch(name, i, params) for i in body["ids"]]}
        if op == "_doc":
            self.indices[name]["docs"][parts[2]] = (1, body)
            return 200, self.item(name, parts[2], 1, "created", 201)
        if op == "_search":
            hits = (self.search_hits or self.default_hits)(name, body)
            tracked = body.get("track_total_hits") not in (None, False)
            return 200, {
                "took": 1,
                "timed_out": False,
                "_shards": {**SHARDS, "skipped": 0},
                "hits": {"hits": hits[: body.get("size", 10)], "max_score": None}
                | ({"total": {"value": len(hits), "relation": "eq"}} if tracked else {}),
            }
        if op == "_count":
            return 200, {"count": len(self.docs(name)), "_shards": {**SHARDS, "skipped": 0}}
        if op == "_refresh":
            return 200, {"_shards": SHARDS}
        raise AssertionError(f"MiniCluster cannot answer {method} {path}")

    def index_op(self, method: str, name: str, body: Any) -> tuple[int, Any]:
        if method == "HEAD":
            return (200 if self.resolve(name) else 404), None
        if method == "PUT":
            if self.resolve(name):
                err = {"type": "resource_already_exists_exception", "reason": name}
                return 400, {"error": {**err, "root_cause": [err]}, "status": 400}
            self.indices[name] = {"mappings": body.get("mappings", {}), "docs": {}}
            for alias in body.get("aliases", {}):
                self.aliases.setdefault(alias, set()).add(name)
            return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}
        if method == "DELETE":
            for i in self.resolve(name):
                del self.indices[i]
            return 200, {"acknowledged": True}
        raise AssertionError(f"MiniCluster cannot answer {method} /{name}")

    def mapping(self, method: str, name: str, body: Any) -> tuple[int, Any]:
        if method == "GET":
            return 200, {i: {"mappings": self.indices[i]["mappings"]} for i in self.resolve(name)}
        for i in self.resolve(name):
            self.indices[i]["mappings"].setdefault("properties", {}).update(body["properties"])
        return 200, {"acknowledged": True}

    def default_hits(self, name: str, body: Json) -> list[Json]:
        after = (body.get("search_after") or [""])[0]
        ids = sorted(pid for pid in self.docs(name) if pid > after)
        index = self.resolve(name)[0]
        return [{"_index": index, "_id": pid, "_score": 1.0, "sort": [pid]} for pid in ids]

    def fetch(self, name: str, pid: str, params: Json) -> Json:
        indices = self.resolve(name)
        stored = self.indices[indices[0]]["docs"].get(pid) if indices else None
        if stored is None:
            return {"_index": name, "_id": pid, "found": False}
        version, source = stored
        doc: Json = {"_index": indices[0], "_id": pid, "_version": version, "found": True}
        doc.update({"_seq_no": 0, "_primary_term": 1})
        if params.get("_source") != "false":
            doc["_source"] = filter_source(source, params)
        return doc

    @staticmethod
    def item(index: str, pid: str, version: int, result: str, status: int) -> Json:
        return {
            "_index": index,
            "_id": pid,
            "_version": version,
            "result": result,
            "status": status,
            "_shards": SHARDS,
            "_seq_no": 0,
            "_primary_term": 1,
        }

    def bulk(self, lines: list[Json]) -> Json:
        items, i = [], 0
        while i < len(lines):
            ((op, meta),) = lines[i].items()
            source = None if op == "delete" else lines[i + 1]
            i += 1 if op == "delete" else 2
            items.append({op: self.bulk_one(op, meta, source)})
        errors = any("error" in next(iter(it.values())) for it in items)
        return {"took": 1, "errors": errors, "items": items}

    def bulk_one(self, op: str, meta: Json, source: Json | None) -> Json:
        index, pid = meta["_index"], meta["_id"]
        if self.throttle_bulk > 0:
            self.throttle_bulk -= 1
            err = {"type": "es_rejected_execution_exception", "reason": "queue full"}
            return {"_index": index, "_id": pid, "status": 429, "error": err}
        docs = self.docs(index)
        old = docs.get(pid)
        version = meta.get("version", (old[0] + 1) if old else 1)
        if meta.get("version_type") == "external" and old and version <= old[0]:
            err = {"type": "version_conflict_engine_exception", "reason": "stale"}
            return {"_index": index, "_id": pid, "status": 409, "error": err}
        if op == "delete":
            if old is None:
                return self.item(index, pid, version, "not_found", 404)
            del docs[pid]
            return self.item(index, pid, version, "deleted", 200)
        assert source is not None
        docs[pid] = (version, source)
        return self.item(index, pid, version, "updated" if old else "created", 201)


def filter_source(source: Json, params: Json) -> Json:
    """``_source_includes`` / ``_source_excludes`` on top-level keys and ``images.vector``."""
    out = dict(source)
    if params.get("_source_includes"):
        pats = params["_source_includes"].split(",")
        out = {k: v for k, v in out.items() if any(fnmatch.fnmatch(k, p) for p in pats)}
    for pat in (params.get("_source_excludes") or "").split(","):
        if pat == "images.vector" and "images" in out:
            out["images"] = [{k: v for k, v in im.items() if k != "vector"} for im in out["images"]]
        elif pat:
            out = {k: v for k, v in out.items() if not fnmatch.fnmatch(k, pat)}
    return out


class SpecConnection(Connection):
    """Validates each request against the spec, answers from ``cluster``, validates the answer."""

    cluster: MiniCluster = MiniCluster()

    def close(self) -> None:
        """Nothing to release."""

    def perform_request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        params: Any = None,
        body: bytes | None = None,
        timeout: Any = None,
        ignore: Any = (),
        headers: Any = None,
    ) -> tuple[int, dict[str, str], str]:
        path = url.split("?")[0]
        parsed = parse_body(path, body)
        validate_request(method, path, parsed)
        params = dict(params or {})
        self.cluster.requests.append((method, path, params, parsed))
        status, answer = self.cluster.answer(method, path, params, parsed)
        if 200 <= status < 300:
            validate_response(method, path, status, answer)
        raw = "" if answer is None else json.dumps(answer)
        if not (200 <= status < 300 or status in ignore or method == "HEAD"):
            self._raise_error(status, raw, "application/json")
        return status, {"content-type": "application/json"}, raw


def fake_client(cluster: MiniCluster) -> Any:
    """An OpenSearch client wired to ``cluster`` through the validating connection."""
    from opensearchpy import OpenSearch

    conn = type("BoundSpecConnection", (SpecConnection,), {"cluster": cluster})
    return OpenSearch(hosts=[{"host": "fake", "port": 9200}], connection_class=conn)
