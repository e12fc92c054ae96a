"""`lookalike serve` starts a real HTTP server that answers over a socket."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx

from tests.conftest import ROOT, served_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_health_similar_and_docs(indexed: dict[str, object]) -> None:
    settings = indexed["settings"]
    port = free_port()
    env = served_env(settings)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lookalike.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert health.json() == {"status": "ok", "products": 36}
        body = httpx.get(f"{base}/products/p0/similar", params={"k": 3}, timeout=10).json()
        assert len(body["hits"]) == 3 and "p0" not in [h["id"] for h in body["hits"]]
        assert httpx.get(f"{base}/docs", timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
