"""Faults against a live OpenSearch node: killed mid-ingest, full write queue, down or frozen
under the API, two workers racing on one product.

Real nodes (scripts/opensearch, OpenSearch 2.19.1, data in this run's temporary folder) on
ports 9221 and 9222, a real Redis, real ``lookalike worker`` processes and the real MobileNet.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import redis
import uvicorn

from indexer.deadletter import dead_letters
from indexer.run import INDEX_BATCH_TASK, batches
from lookalike.attributes import fit_vocabulary
from lookalike.documents import Document, ImageEntry
from lookalike.engines import open_engine
from lookalike.settings import Settings
from tests.conftest import ROOT, make_records, model_settings, write_catalogue
from tests.opensearch_node import (
    HoldingProxy,
    LocalNode,
    http,
    need_java,
    private_redis_db,
    start_nodes,
)
from tests.test_reliability_support import Worker, producer, wait_until, worker_env

pytest.importorskip("opensearchpy")

pytestmark = [pytest.mark.opensearch, pytest.mark.slow]

MAIN_PORT, TINY_PORT, PROXY_PORT = 9221, 9222, 9225
N, BATCH = 1000, 20
PRESSURE_N = 500  # products of the 429 test
QUERY_TIMEOUT = 2.0  # s: LOOKALIKE_OPENSEARCH_TIMEOUT of the API over a frozen node
INGEST_QUERY_TIMEOUT = 10.0  # s: the API beside an ingest (a first kNN query can take 2 s)


class Nodes:
    def __init__(self, main: LocalNode, tiny: LocalNode) -> None:
        self.main, self.tiny = main, tiny


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    """Two nodes of this module's own, each with one write thread.

    The main node's one thread applies bulk requests one after another, so a ``kill -9``
    leaves a prefix of the writes in its translog. With two threads, the writes of two
    batches interleave there and the lost tail of one leaves holes below the other's writes:
    the restarted node fills those holes with no-ops, which count in ``max_seq_no`` though no
    product was written twice (1020 for 1000 products in CI). The tiny node's
    write queue holds one request as well, so concurrent bulk requests are rejected with 429.
    """
    need_java()
    root = tmp_path_factory.mktemp("opensearch")
    main = LocalNode(MAIN_PORT, root / "main", "-Dopensearch.setting.thread_pool.write.size=1")
    tiny = LocalNode(
        TINY_PORT,
        root / "tiny",
        "-Dopensearch.setting.thread_pool.write.size=1 "
        "-Dopensearch.setting.thread_pool.write.queue_size=1",
        heap="512m",
    )
    try:
        start_nodes(main, tiny)
        yield Nodes(main, tiny)
    finally:
        main.stop()
        tiny.stop()


def unique_prefix() -> str:
    return f"faults-{uuid.uuid4().hex[:10]}"


def fit_catalogue_vocabulary(settings: Settings, catalogue: Path) -> None:
    """Store the catalogue's attribute vocabulary once, as the producer does before sending."""
    with open_engine(settings) as engine:
        fit_vocabulary(engine, (r for b in batches(catalogue, None, BATCH, []) for r in b))


def send_batches(sender: Any, catalogue: Path) -> list[Any]:
    """One index job per batch of the catalogue, on the workers' queue."""
    return [
        sender.send_task(
            INDEX_BATCH_TASK,
            args=[[r.model_dump(mode="json") for r in batch]],
            queue="lookalike",
        )
        for batch in batches(catalogue, None, BATCH, [])
    ]


class LookalikeWorker(Worker):
    """``lookalike worker`` (queue ``lookalike``) in its own process group."""

    def __init__(self, env: dict[str, str], log: Path, concurrency: int) -> None:
        self.log = open(log, "a")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lookalike.cli", "worker", f"--concurrency={concurrency}"],
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def opensearch_env(broker: str, data: Path, url: str, prefix: str) -> dict[str, str]:
    # No test here kills a worker, so nothing needs redelivering: a long visibility timeout
    # keeps Redis from handing a retry that waits out its countdown on a slow machine to a
    # second worker process (both would write the same batch).
    env = worker_env(broker, data, visibility=1800)
    env.update(
        LOOKALIKE_ENGINE="opensearch",
        OPENSEARCH_URL=url,
        LOOKALIKE_OPENSEARCH_URL=url,
        LOOKALIKE_OPENSEARCH_PREFIX=prefix,
    )
    return env


def opensearch_settings(data: Path, url: str, prefix: str, **more: object) -> Settings:
    return model_settings(  # type: ignore[return-value]
        data, engine="opensearch", opensearch_url=url, opensearch_prefix=prefix, **more
    )


def ready(log: Path) -> bool:
    return log.exists() and "ready." in log.read_text()


# -- the API over the node ---------------------------------------------------------------------
QUERIES = (
    "/products/p3",
    "/products/p3/similar?k=5",
    "/search?q=red&k=5",
    "/search?q=blue&anchor_ids=p3,p4&k=5",
    "/health",
)


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The API (a real uvicorn server in a thread) over the settings' engine; its base URL."""
    from lookalike.api.app import create_app
    from tests.test_serve import free_port

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 30, "the API server")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def ask_all(base: str) -> list[tuple[int, Any, float]]:
    """Every query once: (status, body, seconds); a hang fails at 15 s instead."""
    out = []
    with httpx.Client(base_url=base, timeout=15) as client:
        for path in QUERIES:
            began = time.monotonic()
            resp = client.get(path)
            out.append((resp.status_code, resp.json(), time.monotonic() - began))
    return out


def assert_all_200(answers: list[tuple[int, Any, float]]) -> None:
    assert [status for status, _, _ in answers] == [200] * len(QUERIES), answers
    assert len(answers[1][1]["hits"]) == 5


def assert_503_in_shape(answers: list[tuple[int, Any, float]], limit: float) -> float:
    """Every answer a 503 ``engine_error`` in the one error shape, each within ``limit``;
    the slowest one's seconds."""
    for (status, body, took), path in zip(answers, QUERIES, strict=True):
        assert status == 503, (path, status, body)
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
        assert body["error"]["code"] == "engine_error", body
        assert took < limit, f"{path} took {took:.2f}s (limit {limit}s)"
    return max(took for _, _, took in answers)


def wait_recovered(base: str, timeout: float) -> float:
    return wait_until(
        lambda: all(status == 200 for status, _, _ in ask_all(base)),
        timeout,
        "the API to answer again by itself",
    )


# -- the node killed mid-ingest ------------------------------------------------------------------
def test_node_killed_mid_ingest_then_restarted_every_product_indexed_once(
    nodes: Nodes, tmp_path: Path, mobilenet_path: Path
) -> None:
    """kill -9 of the node when ~300 of 1000 queued products are in, then a restart on its
    data; the API, serving the same products throughout, answers 503 while the node is down
    and 200 again by itself once it is back."""
    node = nodes.main
    node.ensure_up()
    prefix = unique_prefix()
    alias = f"{prefix}-products"
    data = tmp_path / "data"
    catalogue = write_catalogue(tmp_path / "catalogue", make_records(N))
    with private_redis_db(11) as broker:
        fit_catalogue_vocabulary(opensearch_settings(data, node.url, prefix), catalogue)
        sender = producer(broker)
        jobs = send_batches(sender, catalogue)
        log = tmp_path / "worker.log"
        api = opensearch_settings(data, node.url, prefix, opensearch_timeout=INGEST_QUERY_TIMEOUT)
        worker = LookalikeWorker(opensearch_env(broker, data, node.url, prefix), log, 2)
        try:
            with serving(api) as base:
                wait_until(lambda: node.count(alias) >= 300, 180, "300 products before the kill")
                assert_all_200(ask_all(base))  # the API answers during the ingest
                at_kill = node.count(alias)
                running = len(redis.Redis.from_url(broker).keys("lookalike:deliveries:*"))
                node.kill9()
                killed = time.monotonic()
                first_503 = assert_503_in_shape(ask_all(base), INGEST_QUERY_TIMEOUT + 1)
                time.sleep(2)  # the workers meet a dead node for a while
                still_503 = assert_503_in_shape(ask_all(base), INGEST_QUERY_TIMEOUT + 1)
                restart = node.start()
                back = time.monotonic()
                api_back = wait_recovered(base, 60)  # the same API process, never restarted
            wait_until(
                lambda: all(j.ready() for j in jobs),
                240,
                "every job to finish after the restart",
                lambda: f"{sum(j.ready() for j in jobs)}/{len(jobs)} ready",
            )
            done = time.monotonic()
        finally:
            worker.stop()
        states = [j.state for j in jobs]
        letters = dead_letters(broker)
    text = log.read_text()
    retries = text.count("Retry in")
    assert at_kill < N and running >= 1, "the kill came when nothing was being written"
    assert states == ["SUCCESS"] * len(jobs), f"jobs not saved by a retry: {states}"
    assert letters == []
    assert node.count(alias) == N
    assert node.count(alias, {"bool": {"must_not": {"term": {"revision": 1}}}}) == 0
    writes = node.write_operations(alias)
    assert writes == N, node.seq_no_holes(alias)  # each product written once, none twice
    print(
        f"\n{N}/{N} indexed once after kill -9 of the node at {at_kill} ({running} jobs running);"
        f" down {back - killed:.1f}s (restart {restart:.1f}s), {retries} task retries;"
        f" done {done - back:.1f}s after it was back. API: 503 engine_error in <="
        f" {max(first_503, still_503):.2f}s while down (timeout {INGEST_QUERY_TIMEOUT}s), 200 again"
        f" {api_back:.2f}s after the node was green"
    )


# -- 429: the write queue is full --------------------------------------------------------------
def test_bulk_items_rejected_with_429_are_retried_not_lost(
    nodes: Nodes, tmp_path: Path, mobilenet_path: Path
) -> None:
    """500 queued products, six pool processes writing at once into a node whose write pool
    has one thread and a queue of one. The products share 12 images: after the first batches
    every vector comes from the image cache, so the workers do little but send bulk requests."""
    node = nodes.tiny
    prefix = unique_prefix()
    alias = f"{prefix}-products"
    data = tmp_path / "data"
    records = make_records(PRESSURE_N)
    for rec in records:  # 4 colours x 3 shapes: 12 image files in all
        rec["images"] = [f"img/{rec['color']}-{rec['category']}.jpg"]
    catalogue = write_catalogue(tmp_path / "catalogue", records)
    with private_redis_db(14) as broker:
        fit_catalogue_vocabulary(opensearch_settings(data, node.url, prefix), catalogue)
        before = node.write_rejections()
        sender = producer(broker)
        log = tmp_path / "worker.log"
        worker = LookalikeWorker(opensearch_env(broker, data, node.url, prefix), log, 6)
        try:
            wait_until(lambda: ready(log), 60, "the worker")
            began = time.monotonic()
            jobs = send_batches(sender, catalogue)
            wait_until(
                lambda: all(j.ready() for j in jobs),
                240,
                "every job",
                lambda: f"{sum(j.ready() for j in jobs)}/{len(jobs)} ready",
            )
            took = time.monotonic() - began
        finally:
            worker.stop()
        states = [j.state for j in jobs]
        letters = dead_letters(broker)
    rejected = node.write_rejections() - before
    task_retries = log.read_text().count("Retry in")
    assert rejected > 0, "the node rejected nothing: the fault did not happen"
    assert states == ["SUCCESS"] * len(jobs), f"jobs lost: {states}"
    assert letters == []
    assert node.count(alias) == PRESSURE_N
    assert node.count(alias, {"bool": {"must_not": {"term": {"revision": 1}}}}) == 0
    assert node.write_operations(alias) == PRESSURE_N
    print(
        f"\n{rejected} shard bulk requests rejected (429) and retried, {task_retries} task "
        f"retries; {PRESSURE_N}/{PRESSURE_N} written once in {took:.1f}s"
    )


# -- the node frozen under the API ------------------------------------------------------------
def synthetic_doc(i: int, prefix: str, rng: np.random.Generator, dim: int = 1280) -> Document:
    vec = rng.standard_normal(dim).astype(np.float32)
    return Document(
        id=f"{prefix}{i}",
        title=f"product {i}",
        category=("shirt", "dress", "shoe")[i % 3],
        color=("red", "blue")[i % 2],
        price=float(i),
        images=[
            ImageEntry(0, f"https://img.example/{i}.jpg", f"hash-{i}", vec / np.linalg.norm(vec))
        ],
        models={"image": "faults@1"},
    )


def test_api_answers_503_within_the_timeout_while_the_node_is_frozen_and_recovers(
    nodes: Nodes, tmp_path: Path
) -> None:
    """SIGSTOP of the node: connections are accepted and nothing is answered. Every query
    fails after LOOKALIKE_OPENSEARCH_TIMEOUT with a 503, and answers again after SIGCONT."""
    node = nodes.main
    node.ensure_up()
    settings = opensearch_settings(
        tmp_path / "data", node.url, unique_prefix(), opensearch_timeout=QUERY_TIMEOUT
    )
    rng = np.random.default_rng(3)
    with open_engine(settings) as engine:
        engine.upsert([synthetic_doc(i, "p", rng, dim=64) for i in range(60)])
        engine.refresh()
    with serving(settings) as base:
        assert_all_200(ask_all(base))
        node.freeze()
        try:
            began = time.monotonic()
            frozen = assert_503_in_shape(ask_all(base), QUERY_TIMEOUT + 1.5)
            total = time.monotonic() - began
        finally:
            node.thaw()
        thawed = wait_recovered(base, 30)
    assert frozen >= QUERY_TIMEOUT * 0.9  # it really waited for the node, then gave up
    print(
        f"\nnode frozen: {len(QUERIES)} queries each 503 engine_error in <= {frozen:.2f}s "
        f"({total:.1f}s in all; timeout {QUERY_TIMEOUT}s); 200 again {thawed:.2f}s after SIGCONT"
    )


# -- two workers, one product ------------------------------------------------------------------
def test_two_workers_writing_one_product_the_newer_record_wins(
    nodes: Nodes, tmp_path: Path, mobilenet_path: Path
) -> None:
    """Worker A reaches the node through a proxy that holds its bulk request for 5 s; worker B,
    given a newer record of the same product while A's write is held, writes first. A's older
    write then reaches the node and is refused (409): the newer record stays."""
    node = nodes.main
    node.ensure_up()
    prefix = unique_prefix()
    alias = f"{prefix}-products"
    data = tmp_path / "data"
    base = make_records(1)[0]
    [[first]] = list(batches(write_catalogue(tmp_path / "catalogue", [base]), None, 10, []))
    old = first.model_copy(update={"title": "older record", "price": 10.0})
    new = first.model_copy(update={"title": "newer record", "price": 20.0})
    with open_engine(opensearch_settings(data, node.url, prefix)) as engine:
        fit_vocabulary(engine, [first])
    proxy = HoldingProxy(PROXY_PORT, node.port, hold=5.0)
    proxied = f"http://127.0.0.1:{PROXY_PORT}"
    with private_redis_db(12) as broker_a, private_redis_db(13) as broker_b:
        log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
        a = LookalikeWorker(opensearch_env(broker_a, data, proxied, prefix), log_a, 1)
        b = LookalikeWorker(opensearch_env(broker_b, data, node.url, prefix), log_b, 1)
        try:
            wait_until(lambda: ready(log_a) and ready(log_b), 60, "both workers")
            send_a, send_b = producer(broker_a), producer(broker_b)

            def send(app: Any, record: Any) -> Any:
                dump = [record.model_dump(mode="json")]
                return app.send_task(INDEX_BATCH_TASK, args=[dump], queue="lookalike")

            assert send(send_b, first).get(timeout=60)["inserted"] == 1
            job_a = send(send_a, old)
            assert proxy.held.wait(60), "worker A never sent its write"
            job_b = send(send_b, new)
            report_b = job_b.get(timeout=60)
            b_done = time.monotonic()
            report_a = job_a.get(timeout=60)
        finally:
            a.stop()
            b.stop()
            proxy.close()
    stored = http("GET", f"{node.url}/{alias}/_doc/{base['id']}")["_source"]
    [answer] = [
        ans
        for ans in proxy.answers
        if any(base["id"] == next(iter(i.values()))["_id"] for i in ans.get("items", []))
    ]
    statuses = {
        next(iter(i.values()))["_id"]: next(iter(i.values()))["status"] for i in answer["items"]
    }
    assert report_b["updated"] == 1 and report_a["failed"] == []
    assert b_done < proxy.released, "the newer write was not the first to reach the node"
    assert statuses[base["id"]] == 409  # the node refused the older record
    assert (stored["title"], stored["price"], stored["revision"]) == ("newer record", 20.0, 2)
    print(
        f"\nolder record's write reached the node {proxy.released - b_done:.1f}s after the "
        "newer one was stored: "
        f"refused with 409; stored: {stored['title']!r}, revision {stored['revision']}"
    )
