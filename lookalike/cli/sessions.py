"""``lookalike session``: replay a shopper's recorded events as anchors, offline (no Redis)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from lookalike.cli.common import FilterOpt, JsonOpt, app, console, emit_json, errors, print_result
from lookalike.errors import InvalidInput
from lookalike.settings import Settings


def read_events(path: Path) -> list[Any]:
    """Events from a JSON array, ``{"events": [...]}`` (the API's body) or JSON lines."""
    from pydantic import ValidationError

    from lookalike.sessions import Event, EventIn

    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except ValueError:
        data = [json.loads(line) for line in text.splitlines() if line.strip()]
    rows = data.get("events", []) if isinstance(data, dict) else data
    if not isinstance(rows, list) or not rows:
        raise InvalidInput(f"{path}: no events (a JSON array, {{'events': [...]}} or JSON lines)")
    now, events = time.time(), []
    for number, row in enumerate(rows, start=1):
        try:
            events.append(Event.accept(EventIn.model_validate(row), now, float("inf")))
        except ValidationError as exc:
            raise InvalidInput(f"{path}: event {number}: {exc.errors()[0]['msg']}") from None
    return events


@app.command()
def session(
    events_file: Annotated[Path, typer.Argument(help="Events: JSON array or lines.", exists=True)],
    query: Annotated[str, typer.Option("--query", "-q", help="Keywords, if any.")] = "",
    k: Annotated[int, typer.Option("--k", "-k", help="How many results.")] = 10,
    filters: FilterOpt = None,
    exclude_owned: Annotated[
        bool, typer.Option("--exclude-owned", help="Leave out the cart and purchases.")
    ] = False,
    steps: Annotated[
        bool, typer.Option("--steps", help="Show the top k after each event, as it happened.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """The catalogue sorted for a recorded session: its events as anchors, at the last event."""
    from lookalike.engines import open_engine
    from lookalike.filters import parse_filter_args
    from lookalike.sessions import check_known, session_anchors
    from reranker import run
    from reranker.params import RerankParams
    from reranker.sessions import apply_session

    settings = Settings()
    with errors(), open_engine(settings) as engine:
        events = read_events(events_file)
        check_known(engine, events)
        base = RerankParams.build(k=k).request(
            settings, query=query, filters=parse_filter_args(filters)
        )
        cuts = range(1, len(events) + 1) if steps else [len(events)]
        for cut in cuts:
            seen = events[:cut]
            implied = session_anchors(seen, seen[-1].at, half_life_s=settings.session_half_life)
            if not implied.anchors and not query:
                console.print(f"after {cut} event(s): no anchor yet (only dismissals)")
                continue
            req, used = apply_session(base, events_file.name, implied, exclude_owned)
            data = run(engine, req).with_session(used).to_dict()
            if steps and not as_json:
                last = seen[-1]
                ids = " ".join(h["id"] for h in data["hits"])
                console.print(f"after {cut} ({last.type} {last.product_id}): {ids}")
            elif as_json:
                emit_json({"events": cut, **data})
            else:
                for a in used.anchors:
                    kinds = ",".join(e["type"] for e in a.events)
                    console.print(f"anchor {a.id} weight {a.weight:.3f} ({kinds})")
                for n in used.negatives:
                    console.print(f"negative {n.id} weight {n.weight:.3f}")
                print_result(data, False)
