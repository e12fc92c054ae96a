"""Helpers for the OpenSearch fault tests (no tests here): local nodes to kill, freeze and
restart, a private Redis database, a TCP proxy that holds bulk requests, plain HTTP reads.

A node is the real one ``scripts/opensearch`` builds and starts (OpenSearch 2.19.1 with k-NN),
with its data in a folder of the test's own, so a restart finds the same shards.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import redis

from lookalike.settings import get_settings
from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "opensearch"
NODE_DIR = ROOT / "opensearch-node"
BUILT = NODE_DIR / "target" / "classes" / "lookalike" / "node" / "LocalNode.class"


def need_java() -> None:
    """Skip, saying why, where the node cannot be built or run."""
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"needs {' and '.join(missing)} to build and run a local OpenSearch node "
            "(scripts/opensearch: a JDK 17 and Maven)"
        )


def http(method: str, url: str, body: Any = None, timeout: float = 10) -> Any:
    """One JSON request with the standard library (no client state survives a node restart)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


class LocalNode:
    """One OpenSearch node on ``port`` (9220-9229 in these tests), data under ``home``."""

    def __init__(self, port: int, home: Path, java_opts: str = "", heap: str = "1g") -> None:
        self.port = port
        self.home = home
        self.url = f"http://127.0.0.1:{port}"
        self.env = dict(
            os.environ,
            OPENSEARCH_PORT=str(port),
            OPENSEARCH_HOME=str(home),
            OPENSEARCH_HEAP=heap,
            OPENSEARCH_JAVA_OPTS=java_opts,
        )
        self._starting: subprocess.Popen[str] | None = None

    def answers(self) -> bool:
        try:
            http("GET", f"{self.url}/", timeout=1)
            return True
        except (OSError, ValueError):
            return False

    def begin_start(self) -> None:
        """Launch ``scripts/opensearch start``; :meth:`wait_started` waits for green."""
        if self.answers():
            pytest.fail(f"something already answers on {self.url}: not a node of this test")
        self.home.mkdir(parents=True, exist_ok=True)
        self._starting = subprocess.Popen(
            ["bash", str(SCRIPT), "start"],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_started(self, timeout: float = 150) -> None:
        assert self._starting is not None, "begin_start first"
        try:
            out, _ = self._starting.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._starting.kill()
            out, _ = self._starting.communicate()
        code, self._starting = self._starting.returncode, None
        if code != 0:
            pytest.fail(f"scripts/opensearch start on port {self.port} failed:\n{out}")

    def start(self) -> float:
        """Start (or restart on the same data) and wait for green; the seconds it took."""
        began = time.monotonic()
        self.begin_start()
        self.wait_started()
        return time.monotonic() - began

    def pid(self) -> int:
        return int((self.home / "node.pid").read_text().strip())

    def kill9(self) -> None:
        """``kill -9`` of the java process: no flush, no goodbye; waits until it is gone."""
        pid = self.pid()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state == "Z":  # a zombie: dead, only its parent (init) has not reaped it yet
                break
            time.sleep(0.05)

    def freeze(self) -> None:
        """SIGSTOP: the kernel still accepts connections but the node answers nothing."""
        os.kill(self.pid(), signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid(), signal.SIGCONT)

    def ensure_up(self) -> None:
        """Bring the node back (thawed, or restarted on its data) if a test left it down."""
        if (self.home / "node.pid").exists():
            with suppress(ProcessLookupError):
                self.thaw()
        if not self.answers():
            self.start()

    def stop(self) -> None:
        if (self.home / "node.pid").exists():
            with suppress(ProcessLookupError):
                self.thaw()
        subprocess.run(["bash", str(SCRIPT), "stop"], env=self.env, cwd=ROOT, check=False)

    # -- what the node holds -------------------------------------------------------------------
    def count(self, index: str, query: dict[str, Any] | None = None) -> int:
        """Documents in ``index`` after a refresh; 0 while the index does not exist yet."""
        try:
            http("POST", f"{self.url}/{index}/_refresh", timeout=5)
            body = {"query": query} if query else None
            return int(http("POST", f"{self.url}/{index}/_count", body, timeout=5)["count"])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return 0
            raise

    def write_operations(self, alias: str) -> int:
        """Index operations the products index has ever applied (``max_seq_no`` + 1 of its
        single primary shard): a product written twice counts twice, a 409 not at all."""
        stats = http("GET", f"{self.url}/{alias}/_stats?level=shards", timeout=5)
        [(_, index)] = stats["indices"].items()
        [[shard]] = index["shards"].values()
        return int(shard["seq_no"]["max_seq_no"]) + 1

    def seq_no_holes(self, index: str) -> dict[str, Any]:
        """Where the products' sequence numbers leave holes (a product's earlier write, or a
        no-op a restarted node filled a gap with), and each primary term's share: the
        diagnosis when :meth:`write_operations` differs from the product count."""
        http("POST", f"{self.url}/{index}/_refresh", timeout=5)
        body = {"size": 10000, "_source": False, "seq_no_primary_term": True}
        hits = http("POST", f"{self.url}/{index}/_search", body, timeout=10)["hits"]["hits"]
        seqs = {int(h["_seq_no"]) for h in hits}
        holes = sorted(set(range(max(seqs, default=-1) + 1)) - seqs)
        terms: dict[int, int] = {}
        for h in hits:
            terms[int(h["_primary_term"])] = terms.get(int(h["_primary_term"]), 0) + 1
        return {"holes": holes, "docs_per_primary_term": terms}

    def write_rejections(self) -> int:
        """The write thread pool's rejected count (429s) since the node started."""
        stats = http("GET", f"{self.url}/_nodes/_local/stats/thread_pool", timeout=5)
        [node] = stats["nodes"].values()
        return int(node["thread_pool"]["write"]["rejected"])


def start_nodes(*nodes: LocalNode) -> None:
    """Start several nodes at once (the first alone when the node needs building first)."""
    rest = list(nodes)
    sources = [NODE_DIR / "pom.xml", *(NODE_DIR / "src").rglob("*")]
    built = BUILT.stat().st_mtime if BUILT.exists() else 0.0
    if any(p.stat().st_mtime > built for p in sources if p.exists()):
        rest.pop(0).start()  # builds with Maven once; concurrent builds would collide
    for node in rest:
        node.begin_start()
    for node in rest:
        node.wait_started()


@contextmanager
def private_redis_db(db: int) -> Iterator[str]:
    """A flushed Redis database held by this test alone (a lock in database 0 makes test runs
    sharing one Redis take turns); skips when Redis is not running."""
    base = get_settings().redis_url.rsplit("/", 1)[0]
    url = f"{base}/{db}"
    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {url} ({exc}); scripts/ensure-redis starts one")
    lock = redis.Redis.from_url(f"{base}/0").lock(
        f"lookalike:test-lock:broker-db-{db}", timeout=900, blocking_timeout=900
    )
    if not lock.acquire():
        pytest.fail(f"another test run held Redis database {db} for 15 minutes")
    try:
        redis.Redis.from_url(url).flushdb()
        yield url
    finally:
        lock.release()


class HoldingProxy:
    """A TCP proxy in front of a node that holds each ``POST /_bulk`` request for ``hold``
    seconds before passing it on (a slow network path for one writer), and keeps the answers
    to those requests.

    ``held`` is set once a bulk request is being held, ``released`` is when it was passed on;
    ``answers`` are the decoded JSON bodies
    of the node's answers to held requests."""

    def __init__(self, port: int, upstream_port: int, hold: float) -> None:
        self.port, self.upstream_port, self.hold = port, upstream_port, hold
        self.held = threading.Event()
        self.released = float("inf")  # time.monotonic() when the last held request went on
        self.answers: list[Any] = []
        self._server = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self._server.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        holding: list[bytes] = []  # the answer to a held request, as it comes back
        back = threading.Thread(target=self._back, args=(upstream, client, holding), daemon=True)
        back.start()
        try:
            while data := client.recv(65536):
                if data.startswith(b"POST /_bulk"):
                    self.held.set()
                    time.sleep(self.hold)
                    self.released = time.monotonic()
                    holding.append(b"")  # from now on the answer is recorded
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (upstream, client):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            back.join(5)
            upstream.close()
            client.close()

    def _back(self, upstream: socket.socket, client: socket.socket, holding: list[bytes]) -> None:
        try:
            while data := upstream.recv(65536):
                client.sendall(data)
                if holding:
                    holding[-1] += data
                    answer = _http_json(holding[-1])
                    if answer is not None:
                        self.answers.append(answer)
                        holding.clear()
        except OSError:
            pass


def _http_json(raw: bytes) -> Any:
    """The JSON body of one complete HTTP answer (Content-Length, maybe gzip), else None."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return None
    headers = {
        k.strip().lower(): v.strip()
        for k, _, v in (line.partition(b":") for line in head.split(b"\r\n")[1:])
    }
    length = int(headers.get(b"content-length", b"-1"))
    if length < 0 or len(body) < length:
        return None
    body = body[:length]
    if headers.get(b"content-encoding") == b"gzip":
        body = gzip.decompress(body)
    return json.loads(body)
