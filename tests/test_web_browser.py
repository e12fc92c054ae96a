"""The web page in a real browser: Debian's headless Chromium driven by Playwright.

A real API (uvicorn, in a thread) serves a 36-product catalogue indexed with the real MobileNet;
the tests click through search, like, dislike, more like this, sort by similar, the score
explanation, paging, errors, the clusters and map panels, and the shopper session ("For you").
Screenshots land in ``out/screenshots/`` (printed by each test).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT
from tests.test_serve import free_port

CHROMIUM = Path(os.environ.get("LOOKALIKE_CHROMIUM", "/usr/bin/chromium"))
# Without the background-networking flags Chromium's own connections are refused on a closed
# network and slow every page down.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "out" / "screenshots"
TIMEOUT_MS = 20_000

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is absent: apt-get install chromium chromium-driver (.ci/run does)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (the dev extra has it)"
)


@pytest.fixture(scope="module")
def base_url(indexed: dict[str, object]) -> Iterator[str]:
    """The real API over HTTP on a free port, in a background thread."""
    import uvicorn

    from lookalike.api.app import create_app

    port = free_port()
    config = uvicorn.Config(
        create_app(indexed["settings"]),  # type: ignore[arg-type]
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "API did not start"
        time.sleep(0.1)
    assert httpx.get(f"{url}/health", timeout=5).json()["products"] == 36
    yield url
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, base_url: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The page, loaded with its first query answered; a screenshot is saved at the end."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base_url + "/")
    wait_done(page, 1)
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{request.node.name}.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 1000, f"empty screenshot {shot}"
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def done(page: Any) -> int:
    return int(page.evaluate("Number(document.body.dataset.done || 0)"))


def wait_done(page: Any, at_least: int) -> None:
    """Wait until the page has shown the answer to its ``at_least``-th query."""
    page.wait_for_function(
        f"Number(document.body.dataset.done || 0) >= {at_least}", timeout=TIMEOUT_MS
    )


def act(page: Any, selector: str) -> None:
    """Click something that runs a query, and wait for its answer."""
    before = done(page)
    page.click(selector)
    wait_done(page, before + 1)


def results(page: Any) -> list[dict[str, str]]:
    return [
        {"id": card.get_attribute("data-id"), "category": card.get_attribute("data-category")}
        for card in page.locator("[data-testid=result]").all()
    ]


def ids(page: Any) -> list[str]:
    return [r["id"] for r in results(page)]


def card(page: Any, pid: str) -> str:
    return f"[data-testid=result][data-id='{pid}']"


def search(page: Any, q: str) -> None:
    page.fill("[data-testid=q]", q)
    act(page, "[data-testid=search]")


def thumbnails_loaded(page: Any) -> list[bool]:
    page.wait_for_function(
        "[...document.querySelectorAll('[data-testid=thumb]')].every(i => i.complete)"
    )
    return page.eval_on_selector_all(
        "[data-testid=thumb]", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)"
    )


def test_search_shows_hits_with_loaded_thumbnails(page: Any) -> None:
    assert page.inner_text("[data-testid=status]").startswith("24 of 36 results")
    search(page, "red")
    hits = results(page)
    assert len(hits) == 9
    titles = page.locator("[data-testid=result] [data-testid=title]").all_inner_texts()
    assert all(t.startswith("red ") for t in titles), titles
    loaded = thumbnails_loaded(page)
    assert len(loaded) == 9 and all(loaded)
    widths = page.eval_on_selector_all(
        "[data-testid=thumb]", "imgs => imgs.map(i => i.naturalWidth)"
    )
    assert max(widths) <= 160  # the thumbnail route, not the full photo
    assert page.is_hidden("[data-testid=error]")


def test_like_adds_an_anchor_and_resorts(page: Any) -> None:
    search(page, "circle")
    before = ids(page)
    assert len(before) == 12
    liked = "p2"  # a blue circle
    liked_title = page.inner_text(f"{card(page, liked)} [data-testid=title]")
    act(page, f"{card(page, liked)} [data-testid=like]")
    chips = page.locator("[data-testid=anchor-chip]")
    assert chips.count() == 1 and chips.first.get_attribute("data-id") == liked
    after = ids(page)
    assert liked not in after and len(after) == 11
    assert after != [i for i in before if i != liked]  # re-sorted, not just filtered
    assert "re-sorted by similarity" in page.inner_text("[data-testid=status]")
    # The liked product is now an anchor in every explanation.
    page.click("[data-testid=result] >> nth=0 >> summary")
    text = page.inner_text("[data-testid=result] >> nth=0 >> [data-testid=explain]")
    assert f"{liked_title}: visual" in text
    # A weight can be given to a like; removing the chip restores the keyword order.
    page.fill("[data-testid=anchor-weight]", "3")
    before_weight = done(page)
    page.press("[data-testid=anchor-weight]", "Enter")
    wait_done(page, before_weight + 1)
    assert page.is_hidden("[data-testid=error]") and liked not in ids(page)
    act(page, "[data-testid=anchor-chip] [data-testid=remove-chip]")
    assert page.locator("[data-testid=anchor-chip]").count() == 0
    assert ids(page) == before


def test_dislike_adds_a_negative_and_pushes_it_away(page: Any) -> None:
    search(page, "circle")
    act(page, f"{card(page, 'p0')} [data-testid=like]")
    liked_order = ids(page)
    disliked = liked_order[0]
    disliked_title = page.inner_text(f"{card(page, disliked)} [data-testid=title]")
    act(page, f"{card(page, disliked)} [data-testid=dislike]")
    chips = page.locator("[data-testid=negative-chip]")
    assert chips.count() == 1 and chips.first.get_attribute("data-id") == disliked
    after = ids(page)
    assert disliked not in after and "p0" not in after
    assert after != [i for i in liked_order if i != disliked]
    page.click("[data-testid=result] >> nth=0 >> summary")
    text = page.inner_text("[data-testid=result] >> nth=0 >> [data-testid=explain]")
    negatives = text.split("Negatives", 1)[1]
    assert f"{disliked_title}: visual" in negatives


def test_more_like_this_shows_the_same_kind_of_product(page: Any) -> None:
    act(page, f"{card(page, 'p5')} [data-testid=more-like-this]")  # a green square
    hits = results(page)
    assert hits and "p5" not in [h["id"] for h in hits]
    top = hits[:10]
    same = sum(h["category"] == "square" for h in top)
    assert same >= 8, top
    assert page.inner_text("[data-testid=status]").endswith("(more like p5)")
    chips = page.locator("[data-testid=anchor-chip]")
    assert chips.count() == 1 and chips.first.get_attribute("data-id") == "p5"
    assert all(thumbnails_loaded(page))


def test_sort_by_similar_stays_in_the_category(page: Any) -> None:
    search(page, "blue")
    target = next(h for h in results(page) if h["category"] == "stripes")
    act(page, f"{card(page, target['id'])} [data-testid=sort-similar]")
    assert page.input_value("[data-testid=category]") == "stripes"
    assert page.input_value("[data-testid=q]") == ""
    hits = results(page)
    assert len(hits) == 11  # every other striped product
    assert all(h["category"] == "stripes" for h in hits)
    assert target["id"] not in [h["id"] for h in hits]
    scores = [
        float(s.split()[1])
        for s in page.locator("[data-testid=result] [data-testid=score]").all_inner_texts()
    ]
    assert scores == sorted(scores, reverse=True)
    assert "sorted by similarity" in page.inner_text("[data-testid=status]")


def test_explanation_shows_the_signals(page: Any) -> None:
    act(page, f"{card(page, 'p0')} [data-testid=more-like-this]")
    first = page.locator("[data-testid=result]").first
    assert first.locator("[data-testid=signal]").first.is_hidden()  # collapsed by default
    first.locator("summary").click()
    signals = first.locator("[data-testid=signal]")
    names = [signals.nth(i).get_attribute("data-signal") for i in range(signals.count())]
    assert "visual" in names
    row = first.locator("[data-testid=signal][data-signal=visual]").inner_text().split()
    weight, value, contribution = (float(x) for x in row[1:4])
    assert contribution == pytest.approx(weight * value, abs=2e-3)


def test_load_more_pages_through_everything(page: Any) -> None:
    assert len(ids(page)) == 24 and page.is_visible("[data-testid=load-more]")
    act(page, "[data-testid=load-more]")
    all_ids = ids(page)
    assert len(all_ids) == 36 and len(set(all_ids)) == 36
    assert page.is_hidden("[data-testid=load-more]")


def test_filters_and_api_errors(page: Any) -> None:
    page.fill("[data-testid=color]", "yellow")
    page.fill("[data-testid=price-max]", "30")
    search(page, "")
    prices = page.locator("[data-testid=result] .meta").all_inner_texts()
    assert prices and all("yellow" in p and float(p.split()[-1]) <= 30 for p in prices)
    search(page, "x" * 600)  # the API refuses queries over 512 characters
    error = page.locator("[data-testid=error]")
    assert error.is_visible() and "512" in error.inner_text()
    assert page.locator("h1").is_visible()  # a message, never a blank page
    search(page, "square")
    assert page.is_hidden("[data-testid=error]")
    assert sorted(ids(page)) == ["p19", "p7"]  # yellow squares up to 30, the filters still set


def analysis_or_skip(base_url: str) -> None:
    paths = httpx.get(f"{base_url}/openapi.json", timeout=10).json()["paths"]
    if "/clusters" not in paths or "/map" not in paths:
        pytest.skip("this API has no /clusters and /map endpoints (issue 6 part A)")


def test_clusters_panel(page: Any, base_url: str) -> None:
    analysis_or_skip(base_url)
    assert page.is_visible("[data-testid=clusters-panel]")
    page.fill("[data-testid=clusters-k]", "3")
    page.click("[data-testid=clusters-show]")
    clusters = page.locator("[data-testid=cluster]")
    clusters.first.wait_for()
    assert clusters.count() == 3
    sizes = [int(clusters.nth(i).get_attribute("data-size")) for i in range(3)]
    assert sum(sizes) == 36
    page.wait_for_function(
        "[...document.querySelectorAll('[data-testid=cluster-thumb]')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    clusters.first.locator("button").click()
    members = page.locator("[data-testid=cluster-member]")
    members.first.wait_for()
    assert members.count() == min(sizes[0], 48)


def test_map_panel_hover_and_click(page: Any, base_url: str) -> None:
    analysis_or_skip(base_url)
    points = page.locator("[data-testid=map-point]")
    points.first.wait_for()
    assert points.count() == 36
    # Near-duplicates overlap on the map: take a point that is on top at its centre.
    on_top = page.evaluate(
        """() => [...document.querySelectorAll('[data-testid=map-point]')].filter(c => {
            const r = c.getBoundingClientRect();
            return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === c;
        }).map(c => c.dataset.id)"""
    )
    assert len(on_top) >= 3  # three categories, far apart
    pid = on_top[0]
    point = page.locator(f"[data-testid=map-point][data-id='{pid}']")
    point.hover()
    tooltip = page.locator("[data-testid=map-tooltip]")
    assert tooltip.is_visible()
    assert point.get_attribute("aria-label") in tooltip.inner_text()
    before = done(page)
    point.click()
    wait_done(page, before + 1)
    assert page.inner_text("[data-testid=status]").endswith(f"(more like {pid})")
    assert pid not in ids(page)
    # The other click action: like the point (an anchor chip), results re-sorted around it.
    page.select_option("[data-testid=map-action]", "like")
    other = on_top[-1]
    act(page, f"[data-testid=map-point][data-id='{other}']")
    chip_ids = page.locator("[data-testid=anchor-chip]").evaluate_all(
        "chips => chips.map(c => c.dataset.id)"
    )
    assert other in chip_ids and other not in ids(page)


def test_browsing_shows_no_score_until_something_scores(page: Any) -> None:
    # the first page is the catalogue browsed by filters alone: every score would be 0.000
    assert len(ids(page)) == 24
    assert page.locator("[data-testid=result] [data-testid=score]").count() == 0
    assert page.locator("[data-testid=result] [data-testid=explain]").count() == 0
    act(page, f"{card(page, ids(page)[0])} [data-testid=like]")
    scores = page.locator("[data-testid=result] [data-testid=score]").all_inner_texts()
    assert len(scores) == len(ids(page)) and any(s != "score 0.000" for s in scores)
    act(page, "[data-testid=anchor-chip] [data-testid=remove-chip]")
    assert page.locator("[data-testid=result] [data-testid=score]").count() == 0
    search(page, "red")  # keywords score too (BM25)
    assert page.locator("[data-testid=result] [data-testid=score]").count() == 9


def test_map_legend_groups_the_long_tail(page: Any, base_url: str) -> None:
    analysis_or_skip(base_url)
    page.locator("[data-testid=map-point]").first.wait_for()
    entries = page.locator("[data-testid=legend-entry]").all_inner_texts()
    assert sorted(entries) == ["circle (12)", "square (12)", "stripes (12)"]
    # 120 categories, as a large catalogue has: the nine largest, then one "other" entry
    legend = page.evaluate(
        """async () => {
            const { legendOf } = await import('/static/app.js');
            const points = [];
            for (let c = 0; c < 120; c++) {
                for (let n = 0; n <= (c < 5 ? 10 - c : 1); n++) points.push({ category: `c${c}` });
            }
            const legend = legendOf(points);
            const top = legend.colour('c0'), tail = legend.colour('c99');
            return { entries: legend.entries, top, tail };
        }"""
    )
    names = [e["name"] for e in legend["entries"]]
    assert len(names) == 10 and names[:5] == ["c0", "c1", "c2", "c3", "c4"]
    assert names[-1] == "111 other categories" and legend["entries"][-1]["count"] == 222
    assert legend["top"] != legend["tail"]
    assert len({e["colour"] for e in legend["entries"]}) == 10  # no colour used twice


def session_of(page: Any) -> str:
    sid = page.evaluate("localStorage.getItem('lookalike.session')")
    assert sid, "the page keeps no session id"
    return str(sid)


def test_session_events_and_the_for_you_view(page: Any, base_url: str) -> None:
    # Nothing done yet: "For you" is the plain listing, and says so.
    act(page, "[data-testid=for-you]")
    assert "nothing viewed or liked yet" in page.inner_text("[data-testid=status]")
    plain = ids(page)
    assert len(plain) == 24
    # A like, a view (more like this) and a dislike become the session's events.
    search(page, "circle")
    act(page, f"{card(page, 'p2')} [data-testid=like]")
    viewed = ids(page)[0]
    act(page, f"{card(page, viewed)} [data-testid=more-like-this]")
    disliked = ids(page)[-1]
    act(page, f"{card(page, disliked)} [data-testid=dislike]")
    assert page.inner_text("[data-testid=session-status]") == "Session: 3 events"
    sid = session_of(page)
    session = httpx.get(f"{base_url}/sessions/{sid}", timeout=10).json()
    assert [(e["type"], e["product_id"]) for e in session["events"]] == [
        ("like", "p2"),
        ("view", viewed),
        ("dismiss", disliked),
    ]
    assert {a["id"] for a in session["anchors"]} == {"p2", viewed}
    assert [n["id"] for n in session["negatives"]] == [disliked]
    # "For you" sorts the whole catalogue by the session: what the API answers for it.
    act(page, "[data-testid=for-you]")
    assert page.get_attribute("[data-testid=for-you]", "aria-pressed") == "true"
    status = page.inner_text("[data-testid=status]")
    assert "for you: sorted by 2 products you looked at or liked, away from 1 dismissed" in status
    assert page.input_value("[data-testid=q]") == ""
    shown = ids(page)
    api = httpx.get(f"{base_url}/search", params={"session_id": sid, "k": 24}, timeout=10)
    assert shown == [h["id"] for h in api.json()["hits"]]
    assert shown != plain and "p2" not in shown and viewed not in shown
    # Liking from the "For you" view re-sorts it with the new event.
    liked = shown[0]
    act(page, f"{card(page, liked)} [data-testid=like]")
    assert page.get_attribute("[data-testid=for-you]", "aria-pressed") == "true"
    assert "sorted by 3 products" in page.inner_text("[data-testid=status]")
    assert liked not in ids(page)
    # Forgetting deletes the session on the server and starts a new one ("For you" re-runs).
    act(page, "[data-testid=forget-session]")
    assert page.inner_text("[data-testid=session-status]") == "Session forgotten"
    assert httpx.get(f"{base_url}/sessions/{sid}", timeout=10).json()["events"] == []
    assert "nothing viewed or liked yet" in page.inner_text("[data-testid=status]")


def test_the_page_works_on_when_the_session_routes_fail(page: Any) -> None:
    # What a server without Redis answers (tests/test_api_sessions.py checks the real one).
    body = '{"error": {"code": "engine_error", "message": "Redis is unreachable", "details": {}}}'
    page.route(
        "**/sessions/**",
        lambda route: route.fulfill(status=503, body=body, content_type="application/json"),
    )
    search(page, "circle")
    act(page, f"{card(page, 'p2')} [data-testid=like]")
    assert page.inner_text("[data-testid=session-status]") == "Session off: Redis is unreachable"
    assert "re-sorted by similarity" in page.inner_text("[data-testid=status]")
    assert "p2" not in ids(page) and page.is_hidden("[data-testid=error]")
    act(page, "[data-testid=for-you]")
    assert "nothing viewed or liked yet" in page.inner_text("[data-testid=status]")
    assert len(ids(page)) == 24 and page.is_hidden("[data-testid=error]")
