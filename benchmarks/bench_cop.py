"""The web COP with 5,000 tracks: page update time in a real (headless) Chromium.

A hand-made recording (kizuna.cop.synthetic) of 5,000 tracks per nation at ``TICKS`` reporting
times is served by the real COP server; Playwright drives Debian's Chromium. Measured in the page
with ``performance.now()``, median over ticks:

* update: fetch /api/picture and /api/warnings, parse, build the one GeoJSON source, setData,
  table, and wait until the map has drawn it (``window.kizuna.show``);
* our script: the part of the update in our own code (GeoJSON, table, panels), the rest being
  MapLibre's worker (tiling) and the frames it draws;
* one frame: mean time of a repaint of the unchanged picture (what any update costs at least);
* API: the server's /api/picture for 5,000 tracks, timed from Python (httpx, same machine).

Baselines measured in the same run: the same page with 50 tracks (how update time scales), and
drawing 5,000 symbols with milsymbol uncached (what the per-(affiliation, category) image cache
saves on every tick). Chromium runs with ``--disable-gpu``: WebGL on the SwiftShader software
rasteriser, so a desktop with a GPU draws faster than this.

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


def machine() -> str:
    try:
        version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout
    except OSError:
        version = "chromium ?"
    return (
        f"{platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {version.strip()} "
        f"(software WebGL), load average {os.getloadavg()[0]:.1f}"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(n_tracks: int) -> dict[str, float]:
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
            api = []
            for t in times:
                t0 = time.perf_counter()
                httpx.get(f"{url}/api/picture", params={"nation": "JPN", "t": t}).raise_for_status()
                api.append((time.perf_counter() - t0) * 1000)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                page.goto(f"{url}/?nation=JPN&t={times[0]}")
                page.wait_for_function(
                    "() => window.kizuna && window.kizuna.ready", timeout=120_000
                )
                update, script = [], []
                for t in times:
                    update.append(page.evaluate("t => window.kizuna.show('JPN', t)", t))
                    script.append(page.evaluate("window.kizuna.state.lastScriptMs"))
                drawn = page.evaluate("window.kizuna.renderedCount()")
                symbols = page.evaluate("n => window.kizuna.symbolCost(n)", n_tracks)
                frame = page.evaluate("n => window.kizuna.frameTime(n)", 10)
                browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    assert drawn == n_tracks, f"drew {drawn} of {n_tracks} tracks"
    return {
        "update": statistics.median(update),
        "script": statistics.median(script),
        "api": statistics.median(api),
        "symbols": symbols,
        "frame": frame,
    }


def main() -> None:
    if not os.path.exists(CHROMIUM):
        print(f"bench_cop: skipped, {CHROMIUM} not installed (apt-get install chromium)")
        return
    print(f"machine: {machine()}")
    small, large = measure(50), measure(5000)
    print(f"\nCOP page, median over {TICKS} ticks (ms)")
    print(
        f"{'tracks':>7} {'update+draw':>12} {'our script':>11} {'one frame':>10} {'API':>8} "
        f"{'symbols uncached':>17}"
    )
    for n, r in ((50, small), (5000, large)):
        print(
            f"{n:>7} {r['update']:>12.0f} {r['script']:>11.1f} {r['frame']:>10.0f} "
            f"{r['api']:>8.1f} {r['symbols']:>17.0f}"
        )
    print(
        f"\n5,000 vs 50 tracks: update {large['update'] / small['update']:.1f}x the time for "
        f"100x the tracks; one update = {large['update'] / large['frame']:.1f} frames. Without "
        f"the symbol image cache each tick would add {large['symbols']:.0f} ms "
        f"({(large['update'] + large['symbols']) / large['update']:.1f}x the update)."
    )


if __name__ == "__main__":
    main()
