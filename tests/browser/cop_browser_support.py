"""Helpers for the COP browser tests: a COP server on a free port in a background thread, and a
Playwright page on Debian's Chromium that may not reach anything but localhost."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",  # WebGL then runs on Chromium's software rasteriser (SwiftShader)
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """uvicorn serving ``app`` on 127.0.0.1:port in a daemon thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("COP server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class OfflinePage:
    """A Chromium page whose every request to anything but localhost is blocked and recorded."""

    def __init__(self, chromium: str) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        # No name resolves but localhost: offline even if a request slipped past the router.
        no_dns = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
        self.browser = self._playwright.chromium.launch(
            executable_path=chromium, args=[*CHROMIUM_FLAGS, no_dns]
        )
        self.context = self.browser.new_context(viewport={"width": 1280, "height": 860})
        self.external: list[str] = []
        self.errors: list[str] = []
        # Context-wide, so the map's web workers' requests are seen too.
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on(
            "websocket",
            lambda ws: (
                None if ws.url.startswith("ws://127.0.0.1:") else self.external.append(ws.url)
            ),
        )
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    def _route(self, route: Any) -> None:
        url: str = route.request.url
        local = url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:"))
        if local:
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    def close(self) -> None:
        self.browser.close()
        self._playwright.stop()
