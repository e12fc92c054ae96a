"""Cold start and memory of serving processes, without and with persisted HNSW graphs.

    nice -n 10 python benchmarks/ann_persist.py --n 200000

Fills a data directory with the synthetic catalogue of ``engine_bench.py`` (512-d), then
starts fresh processes on it, one BLAS thread each:

- **before**: ``ann_persist=False``. The process reads the vectors from SQLite and builds
  its own graph: the time from ``Process.start()`` to the first kNN answered by the graph,
  then kNN p50 and recall@50 against exact, and its memory.
- The graph that process built is saved through ``GraphFiles`` (what the engine does after
  a build when persisting), so the same graph is compared and the catalogue built once.
- **after**: a first and then a second process with persistence on: cold start to the
  first graph answer, recall@50, and memory. kNN p50 / p95 are timed in rounds that
  alternate between the three processes (all alive), so they share the machine's load.
  Memory is read from ``/proc/self/smaps_rollup`` with all three alive: ``Rss``,
  ``Anonymous`` (private heap and copied pages: what each process adds) and ``Pss``
  (shared pages split between the processes mapping them).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_bench import Catalogue  # noqa: E402

CTX = mp.get_context("spawn")
QUERIES = 100
ROUNDS = 5


def memory_mib() -> dict[str, float]:
    """Rss, Anonymous and Pss of this process, MiB."""
    out: dict[str, float] = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Anonymous", "Pss"):
                out[key] = int(rest.split()[0]) / 1024
    return out


def serve(data_dir: str, persist: bool, opts: dict[str, int], started: float, conn: Any) -> None:
    """One serving process: open, answer with the graph, measure, then wait to be told."""
    from threadpoolctl import threadpool_limits

    from lookalike.engines.embedded import EmbeddedEngine

    with threadpool_limits(1, user_api="blas"):
        engine = EmbeddedEngine(
            Path(data_dir),
            ann_background=False,
            ann_persist=persist,
            ann_threshold=opts["threshold"],
        )
        queries = query_vectors(opts["dim"])
        engine.knn(queries[0], 50)  # loads the space; builds the graph if none is adopted
        cold = time.time() - started
        space = engine.snapshot.spaces["image"]
        assert space.ann is not None
        approx = [[h.id for h in engine.knn(q, 50)] for q in queries]
        ann, threshold = space.ann, engine.policy.threshold
        space.ann, engine.policy.threshold = None, 1 << 62
        exact = [[h.id for h in engine.knn(q, 50)] for q in queries]
        space.ann, engine.policy.threshold = ann, threshold
        recall = float(
            np.mean([len(set(a) & set(e)) / 50 for a, e in zip(approx, exact, strict=True)])
        )
        conn.send(
            {
                "cold_s": cold,
                "built": space.builds,
                "adopted": space.adopted_seq is not None,
                "mapped": space.mapped,
                "recall": recall,
                "memory": memory_mib(),
            }
        )
        while (msg := conn.recv()) != "exit":
            if msg == "save":
                conn.send(save(engine))
            elif msg == "memory":
                conn.send(memory_mib())
            elif msg == "time":
                times = []
                for q in queries:
                    t = time.perf_counter()
                    engine.knn(q, 50)
                    times.append((time.perf_counter() - t) * 1000)
                conn.send(times)
        engine.close()


def query_vectors(dim: int) -> np.ndarray:
    """Queries from the catalogue's own clusters (its centres come from seed 0), not rows."""
    cat = Catalogue(1, dim)
    cat.rng = np.random.default_rng(7)
    return cat.vectors(QUERIES)


def save(engine: Any) -> float:
    """Persist the graph this process built, as the engine does after a build."""
    from lookalike.engines.embedded.ann_files import GraphFiles, SavedVectors

    snap = engine.snapshot
    space = snap.spaces["image"]
    t = time.perf_counter()
    with snap.lock:
        cat = snap.catalog
        saved = SavedVectors(space.matrix, space.dims.copy(), cat.ords(np.arange(cat.n)))
        GraphFiles(engine.data_dir).save(
            space.graph_key(), snap.seq, space.ann, cat.ords(space.ann.rows), saved
        )
    return time.perf_counter() - t


def start(data_dir: Path, persist: bool, opts: dict[str, int]) -> tuple[Any, Any, dict[str, Any]]:
    parent, child = CTX.Pipe()
    proc = CTX.Process(target=serve, args=(str(data_dir), persist, opts, time.time(), child))
    proc.start()
    return proc, parent, parent.recv()


def fill(data_dir: Path, n: int, dim: int) -> float:
    from lookalike.engines.embedded import EmbeddedEngine

    t = time.perf_counter()
    with EmbeddedEngine(data_dir) as engine:
        for docs in Catalogue(n, dim).batches(5_000):
            engine.upsert(docs)
    return time.perf_counter() - t


def line(name: str, r: dict[str, Any]) -> str:
    m = r["memory"]
    return (
        f"| {name} | {r['cold_s']:.1f} s | {r['p50_ms']:.2f} / {r['p95_ms']:.2f} ms |"
        f" {r['recall']:.3f} |"
        f" {m['Rss']:,.0f} | {m['Anonymous']:,.0f} | {m['Pss']:,.0f} |"
        f" built {r['built']}, adopted {r['adopted']}, matrix mapped {r['mapped']} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--threshold", type=int, default=50_000, help="ann_threshold")
    ap.add_argument("--data-dir", type=Path, default=None, help="default: a temporary folder")
    args = ap.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="lookalike-ann-"))
    try:
        fill_s = fill(data_dir, args.n, args.dim)
        opts = {"dim": args.dim, "threshold": args.threshold}
        b0, c0, r0 = start(data_dir, False, opts)
        c0.send("save")
        save_s = c0.recv()
        a1, c1, r1 = start(data_dir, True, opts)
        alone = r1["memory"]
        a2, c2, r2 = start(data_dir, True, opts)
        results = ((c0, r0), (c1, r1), (c2, r2))
        times: list[list[float]] = [[], [], []]
        for _ in range(ROUNDS):  # interleaved: the three share the machine's load alike
            for i, (c, _r) in enumerate(results):
                c.send("time")
                times[i].extend(c.recv())
        for i, (c, r) in enumerate(results):
            r["p50_ms"] = float(np.percentile(times[i], 50))
            r["p95_ms"] = float(np.percentile(times[i], 95))
            c.send("memory")
            r["memory"] = c.recv()  # all three alive: shared pages split in Pss
        for c, p in ((c0, b0), (c1, a1), (c2, a2)):
            c.send("exit")
            p.join()
        files = sorted((data_dir / "ann").iterdir())
        sizes = ", ".join(
            f"{p.name.split('.', 2)[-1]} {p.stat().st_size / 2**20:,.0f} MiB" for p in files
        )
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    print(
        f"\nn={args.n:,} x {args.dim}-d, fill {fill_s:.0f} s,"
        f" graph + matrix saved in {save_s:.1f} s"
    )
    print(f"files: {sizes}")
    print(
        "| process | cold start to first graph answer | kNN top-50 p50 / p95 | recall@50 |"
        " Rss MiB | Anonymous MiB | Pss MiB | |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(line("before: builds its own graph", r0))
    print(line("after: first process", r1))
    print(line("after: second process", r2))
    print(
        f"first process alone: Rss {alone['Rss']:,.0f}, Anonymous {alone['Anonymous']:,.0f},"
        f" Pss {alone['Pss']:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
