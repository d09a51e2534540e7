"""The web COP with 5,000 tracks: page update and frame time in a real (headless) Chromium.

A hand-made recording (kizuna.cop.synthetic) of N tracks per nation at ``TICKS`` reporting times
is served by the real COP server; Playwright drives Debian's Chromium. Measured in the page with
``performance.now()`` and the Long Tasks API, median over ticks (``window.kizuna.show``):

* main thread: what an update costs the page's own thread — JSON.parse of the column picture
  and the warnings, then our script (decode, hand the map its data URL, virtual table, panels);
* fetch wait: the network and server part (the thread is free meanwhile);
* draw: from handing the map its data until it has drawn it (MapLibre's web worker fetches,
  parses and tiles the GeoJSON, then frames draw it);
* longest task: the longest main-thread task (> 50 ms) during the whole update, drawing included;
* frame: median interval of 10 repaints of the unchanged picture; "basemap" is the same with the
  track and heading layers hidden — what the software rasteriser costs with no tracks at all.

Baselines in the same run: the same page with 50 tracks; and the page's previous way of
updating, replayed in the page at 5,000 tracks — fetch ``/api/picture`` (per-track JSON objects),
parse, build the 10,000-feature GeoJSON on the main thread and copy it (``structuredClone``,
what ``setData(object)`` does to post it to the worker); its table then rebuilt 300 rows. Server
times from Python (httpx, same machine): ``/api/picture`` vs the page's ``/api/picture/columns``
and ``/api/picture/geojson``.

Chromium runs with ``--disable-gpu``: WebGL on the SwiftShader software rasteriser, and the
compositor reads each WebGL frame back to the CPU on the main thread (trace: ``GLES2::ReadPixels``
in ``Commit``). Frame time and the longest task are therefore mostly rasteriser cost, which a
desktop GPU removes; the main-thread update is our code.

Run: ``python benchmarks/bench_cop.py`` (or ``make bench``); needs /usr/bin/chromium.
"""

from __future__ import annotations

import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from kizuna.cop.picture_store import PictureStore
from kizuna.cop.server import create_app
from kizuna.cop.synthetic import write_synthetic_recording

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "small-bilateral.toml"
CHROMIUM = "/usr/bin/chromium"
TICKS = 8
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]  # fmt: skip

# The page's update before the column picture and the worker-fetched GeoJSON (commit c76cdf0's
# web/src/main.js, reduced to its main-thread work), for the baseline.
PREVIOUS_UPDATE_JS = """async (t) => {
  const start = performance.now();
  const response = await fetch(`/api/picture?nation=JPN&t=${t}`);
  const text = await response.text();
  const parseStart = performance.now();
  const tracks = JSON.parse(text).tracks;
  const R = 6371008.8, rad = Math.PI / 180;
  const features = [];
  for (const tr of tracks) {
    const c = tr.course_deg * rad, d = Math.min(tr.speed_mps * 240, 120000);
    const dLat = d * Math.cos(c) / R / rad;
    const dLon = d * Math.sin(c) / (R * Math.max(Math.cos(tr.lat_deg * rad), 0.01)) / rad;
    const at = [tr.lon_deg, tr.lat_deg];
    features.push({ type: "Feature", geometry: { type: "Point", coordinates: at },
      properties: { track_number: tr.track_number, icon: `${tr.identity}|${tr.category}`,
        category: tr.category, identity: tr.identity, selected: false } });
    if (tr.speed_mps > 1) features.push({ type: "Feature", geometry: { type: "LineString",
      coordinates: [at, [tr.lon_deg + dLon, tr.lat_deg + dLat]] },
      properties: { track_number: tr.track_number, identity: tr.identity } });
  }
  structuredClone({ type: "FeatureCollection", features });
  const html = tracks.slice(0, 300).map((tr) => `<tr><td>${tr.track_number}</td>` +
    `<td>${tr.category}</td><td>${tr.identity}</td><td>${(tr.alt_m / 1000).toFixed(1)}</td>` +
    `<td>${tr.contributing_nations.join(",")}</td></tr>`);
  const body = document.createElement("tbody");
  document.getElementById("tracks").appendChild(body);
  body.innerHTML = html.join("");
  body.getBoundingClientRect();
  body.remove();
  return { fetchMs: parseStart - start, mainMs: performance.now() - parseStart };
}"""


def machine() -> str:
    try:
        version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout
    except OSError:
        version = "chromium ?"
    return (
        f"{platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {version.strip()} "
        f"(software WebGL)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def median_of(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r.get(key, 0.0)) for r in rows)


def server_times(url: str, times: tuple[float, ...]) -> dict[str, tuple[float, int]]:
    """Median ms and bytes of each picture endpoint over ``times``."""
    out = {}
    with httpx.Client() as client:
        for path in ("/api/picture", "/api/picture/columns", "/api/picture/geojson"):
            spent, size = [], 0
            for t in times:
                t0 = time.perf_counter()
                response = client.get(f"{url}{path}", params={"nation": "JPN", "t": t})
                response.raise_for_status()
                spent.append((time.perf_counter() - t0) * 1000)
                size = len(response.content)
            out[path] = (statistics.median(spent), size)
    return out


def measure(n_tracks: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    times = tuple(10.0 * (k + 1) for k in range(TICKS))
    with tempfile.TemporaryDirectory() as tmp:
        out = write_synthetic_recording(tmp, SCENARIO, n_tracks, times)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(PictureStore(out)), port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        url = f"http://127.0.0.1:{port}"
        try:
            api = server_times(url, times)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                page.goto(f"{url}/?nation=JPN&t={times[0]}")
                page.wait_for_function(
                    "() => window.kizuna && window.kizuna.ready", timeout=120_000
                )
                updates = []
                for t in times:
                    page.evaluate("t => window.kizuna.show('JPN', t)", t)
                    updates.append(page.evaluate("window.kizuna.state.lastShow"))
                drawn = page.evaluate("window.kizuna.renderedCount()")
                frames = page.evaluate("n => window.kizuna.frameIntervals(n)", 10)
                page.evaluate(
                    "() => { for (const l of ['tracks', 'heading', 'selected']) "
                    "window.kizuna.map.setLayoutProperty(l, 'visibility', 'none'); }"
                )
                page.evaluate("window.kizuna.idle()")
                basemap = page.evaluate("n => window.kizuna.frameIntervals(n)", 10)
                previous = [page.evaluate(PREVIOUS_UPDATE_JS, t) for t in times]
                symbols = page.evaluate("n => window.kizuna.symbolCost(n)", n_tracks)
                browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    assert drawn == n_tracks, f"drew {drawn} of {n_tracks} tracks"
    for u in updates:
        u["mainMs"] = u["pictureParseMs"] + u["warningsParseMs"] + u["scriptMs"]
        u["fetchMs"] = max(u["pictureFetchMs"], u["warningsFetchMs"])
    return {
        "main": median_of(updates, "mainMs"),
        "parse": median_of(updates, "pictureParseMs"),
        "script": median_of(updates, "scriptMs"),
        "table": median_of(updates, "tableMs"),
        "fetch": median_of(updates, "fetchMs"),
        "draw": median_of(updates, "drawMs"),
        "total": median_of(updates, "totalMs"),
        "longest": median_of(updates, "longestTaskMs"),
        "frame": statistics.median(frames),
        "basemap": statistics.median(basemap),
        "previous_main": median_of(previous, "mainMs"),
        "previous_fetch": median_of(previous, "fetchMs"),
        "symbols": symbols,
        "api": api,
    }


def main() -> None:
    if not os.path.exists(CHROMIUM):
        print(f"bench_cop: skipped, {CHROMIUM} not installed (apt-get install chromium)")
        return
    print(f"machine: {machine()}; load average before {os.getloadavg()[0]:.1f}")
    results = {n: measure(n) for n in (50, 5000)}
    print(f"load average after {os.getloadavg()[0]:.1f}")
    print(f"\nCOP page update, median over {TICKS} ticks (ms)")
    print(
        f"{'tracks':>7} {'main thread':>12} {'(parse':>7} {'script':>7} {'table)':>7} "
        f"{'fetch wait':>11} {'draw':>7} {'total':>7} {'longest task':>13} {'frame':>7} "
        f"{'basemap frame':>14}"
    )
    for n, r in results.items():
        print(
            f"{n:>7} {r['main']:>12.1f} {r['parse']:>7.1f} {r['script']:>7.1f} {r['table']:>7.1f} "
            f"{r['fetch']:>11.1f} {r['draw']:>7.0f} {r['total']:>7.0f} {r['longest']:>13.0f} "
            f"{r['frame']:>7.0f} {r['basemap']:>14.0f}"
        )
    large, small = results[5000], results[50]
    print("\nPicture endpoints at 5,000 tracks (server, httpx; median ms, bytes)")
    for path, (ms, size) in large["api"].items():
        print(f"  {path:<24} {ms:>7.1f} ms {size:>11,} B")
    print(
        f"\nAt 5,000 tracks the page's main thread spends {large['main']:.1f} ms per update "
        f"({large['main'] / max(small['main'], 1e-9):.1f}x its 50-track time); the previous "
        f"update's main-thread work, replayed in the same page, took {large['previous_main']:.0f} "
        f"ms ({large['previous_main'] / max(large['main'], 1e-9):.0f}x) after a "
        f"{large['previous_fetch']:.0f} ms fetch. Frames: {large['frame']:.0f} ms with 5,000 "
        f"tracks, {large['basemap']:.0f} ms for the basemap alone on the software rasteriser "
        f"({small['frame']:.0f} ms with 50 tracks). Without the symbol image cache each tick "
        f"would add {large['symbols']:.0f} ms."
    )


if __name__ == "__main__":
    main()
