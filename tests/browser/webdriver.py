"""A small W3C WebDriver client over HTTP for Debian's chromedriver driving headless Chromium."""

from __future__ import annotations

import base64
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import requests

from tests.support import ROOT, free_port, wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1200,900",
]  # fmt: skip
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
# Where the tests keep their screenshots (under var/, which git ignores), one PNG per name.
SCREENSHOTS = ROOT / "var" / "test-artifacts" / "browser"


class Browser:
    """One WebDriver session."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = requests.request(method, self.url + path, json=body, timeout=60)
        value = r.json()["value"]
        if r.status_code >= 400:
            raise AssertionError(f"webdriver {path}: {value}")
        return value

    def get(self, url: str) -> None:
        """Open a page and wait until it has loaded."""
        self._call("POST", "/url", {"url": url})

    def run(self, script: str, *args: Any) -> Any:
        """Run JavaScript in the page; returns its result."""
        return self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css: str) -> str:
        """An element by CSS selector."""
        found = self._call("POST", "/element", {"using": "css selector", "value": css})
        assert ELEMENT in found, (css, found)
        return str(found[ELEMENT])

    def type(self, css: str, value: str) -> None:
        """Type into an input."""
        self._call("POST", f"/element/{self.find(css)}/value", {"text": value})

    def clear(self, css: str) -> None:
        """Empty an input, as a person selecting its text and deleting it."""
        self._call("POST", f"/element/{self.find(css)}/clear", {})

    def click(self, css: str) -> None:
        """Click an element."""
        self._call("POST", f"/element/{self.find(css)}/click", {})

    def screenshot(self, name: str) -> Path:
        """Keep a PNG of the whole page as a test artefact: SCREENSHOTS/<name>.png."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        window = self._call("GET", "/window/rect")
        height = int(self.run("return document.documentElement.scrollHeight"))
        self._call("POST", "/window/rect", {"width": window["width"], "height": height + 150})
        try:
            path.write_bytes(base64.b64decode(self._call("GET", "/screenshot")))
        finally:
            self._call("POST", "/window/rect", {"width": window["width"],
                                                "height": window["height"]})  # fmt: skip
        return path


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium with a fresh profile, driven through chromedriver."""
    port = free_port()
    profile = tempfile.mkdtemp(prefix="trainq-chromium-")
    driver = subprocess.Popen([CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    session = None
    try:
        wait_until(lambda: _ready(base), 30, "chromedriver")
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": CHROMIUM, "args": [*FLAGS, f"--user-data-dir={profile}"]}}}}  # fmt: skip
        r = requests.post(base + "/session", json=caps, timeout=120)
        assert r.status_code == 200, r.text
        session = r.json()["value"]["sessionId"]
        yield Browser(f"{base}/session/{session}")
    finally:
        if session is not None:
            with suppress(requests.RequestException):
                requests.delete(f"{base}/session/{session}", timeout=30)
        driver.terminate()
        driver.wait(30)
        time.sleep(0.2)
        shutil.rmtree(profile, ignore_errors=True)


def _ready(base: str) -> bool:
    try:
        return bool(requests.get(base + "/status", timeout=2).json()["value"]["ready"])
    except (requests.RequestException, ValueError, KeyError):
        return False
