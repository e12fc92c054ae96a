"""Session anchors against "the last product viewed", on simulated fashion-10k shoppers.

    python benchmarks/session_taste.py --data-dir out/congruence/embedded \
        --catalogue out/congruence/fashion-10k.jsonl [--shoppers 200] [--seed 0]

The data dir holds fashion-10k indexed by ``lookalike index`` (MobileNetV2 GlobalPool and
all-MiniLM-L6-v2, as ``benchmarks/opensearch_congruence.py`` leaves it). Each simulated
shopper has one taste, a (category, colour) pair with at least 30 products, and browses:
each step views a product of the taste with probability ``--focus`` (0.8) and any other
product otherwise; a product of the taste is then liked with probability 0.3, one outside it
dismissed with probability 0.5 (the shopper reacts to noise). Events are a minute apart.
After 1, 3, 5 and 10 views, the top 10 of "more like this" (default weights, no filter) is
judged: the share of hits that match the taste (category and colour both), with the
session's anchors and negatives (``lookalike.sessions.session_anchors`` through
``reranker.sessions.with_session``) against the last viewed product as the only anchor.
Products the session made anchors never appear in their own results. A session whose only
events so far are a view and a dismissal implies no anchor: it is answered as the baseline
(as a storefront would) and counted.

Latency: the same searches through the HTTP API (uvicorn on ``--port``, real Redis), by
``session_id`` against the same anchors named in ``anchor_ids`` (one BLAS thread,
interleaved; p50 and p95 of each), and the session's own part (its Redis read, the decay and
the merge with explicit anchors) timed where it runs, around ``SessionQuery.apply`` in the
route. On busy shared cores the end-to-end medians of two identical searches differ by more
than the session's part: the part timed in place is the cost of a session.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from lookalike.engines import create_engine  # noqa: E402
from lookalike.sessions import Event, session_anchors  # noqa: E402
from reranker import Anchor, RerankRequest, run  # noqa: E402
from reranker.sessions import with_session  # noqa: E402

STEPS = (1, 3, 5, 10)
HALF_LIFE = 1800.0


def tastes(catalogue: Path, minimum: int) -> tuple[dict[str, tuple[str, str]], dict]:
    """Each product's (category, colour), and the products of each taste large enough."""
    of: dict[str, tuple[str, str]] = {}
    for line in catalogue.read_text().splitlines():
        r = json.loads(line)
        of[str(r["id"])] = (r.get("category") or "", r.get("color") or "")
    groups: dict[tuple[str, str], list[str]] = {}
    for pid, taste in of.items():
        groups.setdefault(taste, []).append(pid)
    return of, {t: sorted(ids) for t, ids in groups.items() if len(ids) >= minimum}


def simulate(rng: random.Random, ids: list[str], members: list[str], focus: float) -> list[Event]:
    """Ten views (with likes and dismissals between them), a minute apart, ending now."""
    now, events, seen = time.time(), [], set()
    in_taste = set(members)
    for step in range(STEPS[-1]):
        pool = members if rng.random() < focus else ids
        pid = rng.choice([p for p in pool if p not in seen] or pool)
        seen.add(pid)
        at = now - (STEPS[-1] - step) * 60
        events.append(Event(type="view", product_id=pid, at=at))
        if pid in in_taste and rng.random() < 0.3:
            events.append(Event(type="like", product_id=pid, at=at + 10))
        elif pid not in in_taste and rng.random() < 0.5:
            events.append(Event(type="dismiss", product_id=pid, at=at + 10))
    return events


def upto(events: list[Event], views: int) -> list[Event]:
    """The events up to and including the reactions to the ``views``-th view."""
    out, count = [], 0
    for e in events:
        if e.type == "view":
            count += 1
            if count > views:
                break
        out.append(e)
    return out


def latency(args: argparse.Namespace, sessions: list[list[Event]]) -> None:
    """/search by session_id against the same anchors named in the query, interleaved."""
    import threading
    import uuid

    import httpx
    import uvicorn

    from lookalike.api.app import create_app
    from lookalike.api.routes import sessions as routes
    from lookalike.settings import Settings

    lookups: list[float] = []  # the session's part, timed where it runs: in the route
    apply = routes.SessionQuery.apply

    def timed_apply(self: Any, req: RerankRequest) -> Any:
        start = time.perf_counter()
        try:
            return apply(self, req)
        finally:
            if self.session_id is not None:
                lookups.append((time.perf_counter() - start) * 1000)

    routes.SessionQuery.apply = timed_apply  # type: ignore[method-assign]

    shared = ROOT.parent / "shared"
    settings = Settings(
        data_dir=args.data_dir,
        image_model=str(shared / "models/tf2_mobilenet_v2_1.0_224_ptq.tflite"),
        image_tensor="GlobalPool",
        text_model="all-MiniLM-L6-v2",
        session_rate="100000/minute",
        session_client_rate="1000000/minute",
    )
    timings: dict[str, list[float]] = {"session_id": [], "anchor_ids": []}
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=args.port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=60) as client:
        queries = []
        for events in sessions:
            sid = f"bench-{uuid.uuid4().hex}"
            body = {"events": [e.model_dump() for e in events]}
            assert client.post(f"/sessions/{sid}/events", json=body).status_code == 200
            used = client.get("/search", params={"session_id": sid}).json()["session"]
            named = {
                "anchor_ids": ",".join(f"{a['id']}:{a['weight']}" for a in used["anchors"]),
                "negative_ids": ",".join(f"{n['id']}:{n['weight']}" for n in used["negatives"]),
            }
            queries.append(({"session_id": sid}, named))
        for round_ in range(args.rounds + 1):  # the first round warms up
            for i, (by_session, named) in enumerate(queries):
                pair = [("session_id", by_session), ("anchor_ids", named)]
                for name, params in pair if (i + round_) % 2 else pair[::-1]:
                    start = time.perf_counter()
                    assert client.get("/search", params=params).status_code == 200
                    if round_:
                        timings[name].append((time.perf_counter() - start) * 1000)
            if not round_:
                lookups.clear()
        for by_session, _ in queries:
            client.delete(f"/sessions/{by_session['session_id']}")
    server.should_exit = True
    thread.join()
    ms = {k: np.array(v) for k, v in timings.items()}
    print(
        f"\n/search over HTTP (uvicorn in this process, keep-alive client, real Redis), "
        f"{len(queries)} sessions of "
        f"{len(sessions[0])}+ events, {args.rounds} rounds after a warm-up, interleaved, "
        "one BLAS thread"
    )
    print("| request | p50 ms | p95 ms |")
    print("| --- | --- | --- |")
    for name, label in (
        ("anchor_ids", "the anchors named in `anchor_ids`/`negative_ids`"),
        ("session_id", "`session_id` (Redis read + anchor arithmetic)"),
    ):
        print(
            f"| {label} | {np.percentile(ms[name], 50):.2f} | {np.percentile(ms[name], 95):.2f} |"
        )
    own = np.array(lookups)
    print(
        f"| the session's own part (Redis read, decay, merge; timed in the route) | "
        f"{np.percentile(own, 50):.2f} | {np.percentile(own, 95):.2f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT / "out/congruence/embedded")
    ap.add_argument("--catalogue", type=Path, default=ROOT / "out/congruence/fashion-10k.jsonl")
    ap.add_argument("--shoppers", type=int, default=200)
    ap.add_argument("--focus", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds over the sessions")
    ap.add_argument("--port", type=int, default=8765, help="port of the API for the latency part")
    args = ap.parse_args()
    threadpool_limits(1)
    of, groups = tastes(args.catalogue, 30)
    engine = create_engine("embedded", args.data_dir)
    ids = sorted(set(of) & set(engine.all_ids()))
    rng = random.Random(args.seed)
    names = sorted(groups)
    simulated: list[list[Event]] = []
    share: dict[tuple[str, int], list[float]] = {}
    category_share: dict[tuple[str, int], list[float]] = {}
    fallbacks: dict[int, int] = {}
    for _ in range(args.shoppers):
        taste = rng.choice(names)
        events = simulate(rng, ids, groups[taste], args.focus)
        simulated.append(events)
        for views in STEPS:
            seen = upto(events, views)
            last = [e for e in seen if e.type == "view"][-1].product_id
            implied = session_anchors(seen, seen[-1].at, half_life_s=HALF_LIFE)
            baseline = RerankRequest(anchors=(Anchor(last),), k=10)
            if implied.anchors:
                session = with_session(RerankRequest(k=10), implied)
            else:  # only a dismissal so far: a storefront shows what it would without one
                session = baseline
                fallbacks[views] = fallbacks.get(views, 0) + 1
            variants = {"last viewed product": baseline, "session anchors": session}
            for name, req in variants.items():
                hits = run(engine, req).hits
                share.setdefault((name, views), []).append(
                    sum(of[h.id] == taste for h in hits) / 10
                )
                category_share.setdefault((name, views), []).append(
                    sum(of[h.id][0] == taste[0] for h in hits) / 10
                )
    print(
        f"\nfashion-10k: {args.shoppers} shoppers (seed {args.seed}), {len(names)} tastes of "
        f">= 30 products, focus {args.focus}; share of the top 10 matching the taste "
        "(category and colour; category alone in brackets)"
    )
    print("| anchors | " + " | ".join(f"after {v} views" for v in STEPS) + " |")
    print("| --- |" + " --- |" * len(STEPS))
    for name in ("last viewed product", "session anchors"):
        cells = [
            f"{np.mean(share[(name, v)]):.3f} ({np.mean(category_share[(name, v)]):.3f})"
            for v in STEPS
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(
        "sessions with no positive anchor yet (answered as the baseline): "
        + ", ".join(f"{fallbacks.get(v, 0)} after {v}" for v in STEPS)
    )
    engine.close()
    latency(args, simulated)


if __name__ == "__main__":
    main()
