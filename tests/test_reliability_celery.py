"""At-least-once ingest: kill -9 workers mid-batch, poison messages, idempotent redelivery."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from indexer.deadletter import MAX_DELIVERIES, dead_letters, main, replay
from indexer.run import batches
from lookalike.attributes import fit_vocabulary
from lookalike.engines import open_engine
from tests.conftest import make_records, model_settings, write_catalogue
from tests.test_reliability_support import (
    Worker,
    broker_state,
    db_count,
    private_broker,
    producer,
    wait_until,
    worker_env,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def broker9() -> Iterator[str]:
    with private_broker() as url:
        yield url


N = 1000
BATCH = 20
VISIBILITY = 20  # s (time limit 10 s): batches take ~1 s here; production keeps 7200


@pytest.mark.parametrize("kill", ["pool-process", "whole-worker"])
def test_kill_9_mid_batch_loses_nothing_and_repeats_nothing(
    tmp_path: Path, mobilenet_path: Path, broker9: str, kill: str
) -> None:
    """1000 products queued; kill -9 when 300 are indexed; every product indexed exactly once."""
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    broker = broker9
    data = tmp_path / "data"
    catalogue = write_catalogue(tmp_path / "catalogue", make_records(N))
    with open_engine(model_settings(data)) as engine:  # type: ignore[arg-type]
        fit_vocabulary(engine, (r for b in batches(catalogue, None, BATCH, []) for r in b))
    sender = producer(broker)
    for batch in batches(catalogue, None, BATCH, []):
        records = [r.model_dump(mode="json") for r in batch]
        sender.send_task("lookalike.index_batch", args=[records], queue=queue)

    env = worker_env(broker, data, VISIBILITY)
    log = tmp_path / "worker.log"
    client = redis.Redis.from_url(broker)
    worker = Worker("indexer.celery_app", queue, env, log, concurrency=2)
    try:
        wait_until(lambda: db_count(data) >= 300, 180, "300 products before the kill")
        if kill == "pool-process":
            running = len(client.keys("lookalike:deliveries:*"))  # jobs inside the pool now
            killed = worker.kill_pool_process()  # its job is rejected and requeued at once
            at_kill, in_flight = db_count(data), running
            wait_until(
                lambda: killed not in worker.pool_children() and len(worker.pool_children()) == 2,
                60,
                "the pool process to be replaced",
            )
        else:
            worker.kill_all()  # its jobs stay in Redis's unacked set until the visibility timeout
            at_kill, in_flight = db_count(data), client.hlen("unacked")
            worker.stop()
            worker = Worker("indexer.celery_app", queue, env, log, concurrency=2)
        took = wait_until(
            lambda: db_count(data) >= N,
            240,
            f"all {N} products after the kill",
            lambda: f"{db_count(data)} indexed; broker: {broker_state(broker)}",
        )
    finally:
        worker.stop()
    assert at_kill < N, "the kill came after the batch had finished"
    assert in_flight >= 1, "the dead worker held no job: nothing was redelivered"
    revisions = db_count(data, "SELECT count(*) FROM products WHERE revision != 1")
    writes = db_count(data, "SELECT count(*) FROM changes")
    assert (db_count(data), revisions, writes) == (N, 0, N)  # each product written once
    assert dead_letters(broker) == []
    print(
        f"\n{N}/{N} indexed once after kill -9 of the {kill} at {at_kill} "
        f"({in_flight} jobs running or unacked; {took:.0f}s to finish)"
    )


def test_poison_message_is_dead_lettered_and_queue_drains(
    tmp_path: Path, broker9: str, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = f"poison-{uuid.uuid4().hex[:8]}"
    broker = broker9
    sender = producer(broker)
    poison = sender.send_task("test.crash", args=["boom"], queue=queue)
    good = [sender.send_task("test.ok", args=[i], queue=queue) for i in range(20)]
    env = worker_env(broker, tmp_path / "data", 60)
    worker = Worker("tests.test_reliability_app", queue, env, tmp_path / "w.log", concurrency=1)
    try:
        assert [r.get(timeout=120) for r in good] == list(range(20))
        wait_until(lambda: bool(dead_letters(broker)), 120, "the dead-letter record")
        with pytest.raises(Exception, match="dead-lettered"):
            poison.get(timeout=60)
    finally:
        worker.stop()
    [record] = dead_letters(broker)
    assert record["task_id"] == poison.id and record["task"] == "test.crash"
    assert record["deliveries"] == MAX_DELIVERIES and record["args"] == ["boom"]
    assert record["queue"] == queue
    main([broker])  # python -m indexer.deadletter: one JSON line per dead letter
    assert poison.id in capsys.readouterr().out
    [new_id] = replay(broker, sender)  # no worker now: the task waits in its queue
    assert new_id != poison.id and dead_letters(broker) == []
    assert redis.Redis.from_url(broker).llen(queue) == 1


def test_hostile_images_cost_one_image_not_the_worker(
    tmp_path: Path, mobilenet_path: Path, broker9: str
) -> None:
    """A batch full of hostile images through a real worker: per-image errors, same pool."""
    from tests.test_hostile_images import WRONG_CONTENT, deflate_bomb, encoded

    queue = f"hostile-{uuid.uuid4().hex[:8]}"
    broker = broker9
    folder = tmp_path / "catalogue"
    folder.mkdir()
    hostile = {"bomb.png": deflate_bomb(7000, 7000), "cut.jpg": encoded("JPEG")[:200]}
    hostile.update(WRONG_CONTENT)
    for name, data in hostile.items():
        (folder / name).write_bytes(data)
    records = make_records(len(hostile))
    for record, name in zip(records, sorted(hostile), strict=True):
        record["images"] = [name, *record["images"], "http://169.254.169.254/latest/meta-data/"]
    catalogue = write_catalogue(folder, records)
    [batch] = list(batches(catalogue, None, 100, []))
    env = worker_env(broker, tmp_path / "data", 60)
    worker = Worker("indexer.celery_app", queue, env, tmp_path / "w.log", concurrency=1)
    try:
        sender = producer(broker)
        log = tmp_path / "w.log"
        wait_until(lambda: "ready." in log.read_text(), 60, "the worker to be ready")
        pool = worker.pool_children()
        job = sender.send_task(
            "lookalike.index_batch", args=[[r.model_dump(mode="json") for r in batch]], queue=queue
        )
        report = job.get(timeout=120)
        assert worker.pool_children() == pool  # nobody died
        assert "exited with" not in log.read_text()
    finally:
        worker.stop()
    assert report["inserted"] == len(records) and report["failed"] == []
    assert len(report["image_errors"]) == 2 * len(records)  # the hostile file and the URL
