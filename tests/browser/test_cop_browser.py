"""The COP page in a real headless Chromium (Debian's, via Playwright), fully offline.

The page is served by the real COP server over a hand-made recording (kizuna.cop.synthetic) with
known releasability (every 5th track REL TO JPN only) and a two-revision missile warning.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cop_browser_support import ARTIFACTS, OfflinePage, ServerThread

from kizuna.cop.picture_store import PictureStore
from kizuna.cop.server import create_app
from kizuna.cop.synthetic import BALLISTIC_TRACK, write_synthetic_recording

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "small-bilateral.toml"
TIMES = (10.0, 20.0, 30.0)
N_TRACKS = 40


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    out = write_synthetic_recording(
        tmp_path_factory.mktemp("cop-browser"), SCENARIO, N_TRACKS, TIMES
    )
    with ServerThread(create_app(PictureStore(out))) as running:
        yield running


@pytest.fixture(scope="module")
def cop(offline_page: OfflinePage, server: ServerThread) -> OfflinePage:
    offline_page.page.goto(f"{server.url}/?nation=JPN&t=30")
    offline_page.page.wait_for_function(
        "() => (window.kizuna && window.kizuna.ready) || document.body.dataset.error",
        timeout=60_000,
    )
    assert offline_page.page.evaluate("document.body.dataset.error || ''") == ""
    return offline_page


def api_numbers(server: ServerThread, nation: str, t: float) -> list[int]:
    picture = httpx.get(f"{server.url}/api/picture", params={"nation": nation, "t": t}).json()
    return sorted(tr["track_number"] for tr in picture["tracks"])


def show(cop: OfflinePage, nation: str, t: float) -> None:
    cop.page.evaluate("([n, t]) => window.kizuna.show(n, t)", [nation, t])


def test_page_loads_offline_without_errors(cop: OfflinePage) -> None:
    assert cop.external == [], f"the page tried to reach the network: {cop.external}"
    assert not [e for e in cop.errors if "GL Driver" not in e], cop.errors


def test_symbols_drawn_equal_tracks_the_api_returns(cop: OfflinePage, server: ServerThread) -> None:
    for nation, t in (("JPN", 30.0), ("JPN", 10.0), ("USA", 20.0)):
        show(cop, nation, t)
        expected = api_numbers(server, nation, t)
        assert cop.page.evaluate("window.kizuna.renderedCount()") == len(expected)
        assert cop.page.evaluate("window.kizuna.renderedTrackNumbers()") == expected
        assert cop.page.text_content("#track-count") == f"{len(expected)} of {len(expected)}"
        assert table_numbers(cop) == expected


# Scroll the table one page down; true if it was already at the end.
SCROLL_ONE_PAGE = """() => {
  const s = document.getElementById('table-scroll');
  const end = s.scrollTop + s.clientHeight >= s.scrollHeight - 1;
  s.scrollTop += s.clientHeight;
  return end;
}"""


def table_numbers(cop: OfflinePage) -> list[int]:
    """Every track number in the virtual table, scrolling it through (only the rows in view
    are in the page at any moment)."""
    seen: dict[int, None] = {}
    cop.page.evaluate("document.getElementById('table-scroll').scrollTop = 0")
    while True:
        cop.page.evaluate(
            "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
        )
        rows = cop.page.eval_on_selector_all(
            "#tracks tbody tr", "rows => rows.map(r => Number(r.dataset.tn))"
        )
        seen.update(dict.fromkeys(rows))
        at_end = cop.page.evaluate(SCROLL_ONE_PAGE)
        if at_end:
            return sorted(seen)


def test_track_table_is_virtual_and_scrolls_through_every_track(
    cop: OfflinePage, server: ServerThread
) -> None:
    show(cop, "JPN", 30.0)
    in_dom = cop.page.locator("#tracks tbody tr").count()
    assert 0 < in_dom < N_TRACKS  # only the rows in view (and a few more) are drawn
    assert table_numbers(cop) == api_numbers(server, "JPN", 30.0)
    cop.page.select_option("#filter-category", "ballistic")  # filters narrow table and map
    try:
        assert cop.page.text_content("#track-count") == f"1 of {N_TRACKS}"
        cop.page.evaluate("window.kizuna.idle()")
        assert cop.page.evaluate("window.kizuna.renderedTrackNumbers()") == [BALLISTIC_TRACK]
    finally:
        cop.page.select_option("#filter-category", "")


def test_switching_nation_shows_what_the_policy_releases(
    cop: OfflinePage, server: ServerThread
) -> None:
    show(cop, "JPN", 30.0)
    jpn = set(cop.page.evaluate("window.kizuna.renderedTrackNumbers()"))
    # Through the nation selector, as a user would.
    cop.page.select_option("#nation", "USA")
    cop.page.wait_for_function("() => window.kizuna.state.picture.nation === 'USA'")
    cop.page.evaluate("window.kizuna.idle()")
    usa = set(cop.page.evaluate("window.kizuna.renderedTrackNumbers()"))
    assert usa == set(api_numbers(server, "USA", 30.0))
    withheld = jpn - usa
    assert withheld == {10_000 + i for i in range(N_TRACKS) if i % 5 == 4}
    labels = cop.page.evaluate("window.kizuna.state.picture.label")
    assert labels and all("USA" in label for label in labels)


def test_warning_shows_its_ellipse_countdown_and_history(cop: OfflinePage) -> None:
    show(cop, "JPN", 10.0)  # before the first warning
    assert cop.page.evaluate("window.kizuna.warningEllipsesDrawn()") == 0
    assert "No warnings." in cop.page.inner_text("#warnings")
    show(cop, "JPN", 30.0)
    assert cop.page.evaluate("window.kizuna.warningEllipsesDrawn()") >= 1
    panel = cop.page.inner_text("#warnings")
    assert f"Threat {BALLISTIC_TRACK}" in panel
    assert "revision 1" in panel and "impact in 400 s" in panel and "Kanazawa" in panel
    assert cop.page.locator("#warnings tbody tr").count() == 2  # revision history


def test_clicking_a_track_shows_its_details(cop: OfflinePage) -> None:
    show(cop, "JPN", 30.0)
    cop.page.click(f"#tracks tbody tr[data-tn='{BALLISTIC_TRACK}']")
    cop.page.wait_for_selector("#details-panel:not([hidden])")
    details = cop.page.inner_text("#details")
    assert "ballistic" in details and "hostile" in details
    assert "USA-NOTO, JPN-NIIGATA" in details and "UNCLASSIFIED REL TO JPN,USA" in details
    assert "3 reports" in details


def test_play_replays_over_the_websocket_to_the_end(cop: OfflinePage) -> None:
    show(cop, "USA", 10.0)
    cop.page.select_option("#speed", "100")
    cop.page.click("#play")
    # Frames arrive for every reporting time, then "end" stops playing.
    cop.page.wait_for_function(
        "() => window.kizuna.state.picture.time === 30 && !window.kizuna.state.playing",
        timeout=30_000,
    )
    assert cop.page.inner_text("#play") == "▶"
    assert cop.page.input_value("#time") == "2"  # the slider followed the replay
    assert cop.page.evaluate("window.kizuna.state.nation") == "USA"


def test_screenshot_is_kept(cop: OfflinePage) -> None:
    show(cop, "JPN", 30.0)
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "cop.png"
    cop.page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
    assert cop.external == []


def test_live_page_follows_a_growing_recording(
    offline_page: OfflinePage, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Last in this file: it moves the shared page to a live server."""
    import kizuna.cop.server as cop_server

    out = tmp_path_factory.mktemp("cop-live")
    write_synthetic_recording(out, SCENARIO, N_TRACKS, TIMES[:2])
    saved, cop_server.LIVE_POLL_S = cop_server.LIVE_POLL_S, 0.1
    try:
        with ServerThread(create_app(PictureStore(out), live=True)) as live:
            page = offline_page.page
            page.goto(f"{live.url}/?nation=USA")
            page.wait_for_function(
                "() => (window.kizuna && window.kizuna.ready) || document.body.dataset.error",
                timeout=60_000,
            )
            page.wait_for_function("() => window.kizuna.state.picture.time === 20")
            write_synthetic_recording(out, SCENARIO, N_TRACKS, TIMES)  # the run goes on
            page.wait_for_function("() => window.kizuna.state.picture.time === 30", timeout=30_000)
            page.evaluate("window.kizuna.idle()")
            assert page.evaluate("window.kizuna.renderedTrackNumbers()") == api_numbers(
                live, "USA", 30.0
            )
            assert page.input_value("#time") == "2"  # the slider grew with the recording
            assert offline_page.external == []
    finally:
        cop_server.LIVE_POLL_S = saved
