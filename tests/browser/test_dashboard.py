"""The dashboard in real headless Chromium: sign in, the job list, a job's curves growing live."""

from __future__ import annotations

import time

import pytest

from tests.browser.webdriver import chromium
from tests.integration.conftest import Live
from tests.live import LiveStacks
from tests.specs import quickstart
from tests.support import wait_until

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


@pytest.fixture(scope="module")
def live(live_stacks: LiveStacks) -> Live:
    """The shared service on SQLite (tests/live.py)."""
    return live_stacks.get("sqlite")


POINTS = "return Number(document.getElementById('chart-loss').dataset.points)"


def test_job_page_curves_grow_as_epochs_finish(live: Live) -> None:
    token = live.alice["Authorization"].split(" ", 1)[1]
    job = live.submit(quickstart(epochs=6, batch_size=8))
    wait_until(lambda: live.get(job["id"])["status"] == "running", 120, "the job to start")
    with chromium() as browser:
        browser.get(f"{live.url}/")
        browser.type("#token", token)  # sign in with a token, as a person would
        browser.click("#signin button")
        wait_until(lambda: browser.run("return !document.getElementById('content').hidden"),
                   30, "the signed-in list")  # fmt: skip
        row = f"tr[data-job-id='{job['id']}']"
        wait_until(lambda: browser.run(f"return !!document.querySelector(\"{row}\")"), 30,
                   "the job in the list")  # fmt: skip

        browser.get(f"{live.url}/jobs/{job['id']}")  # the same page stays open from here on
        seen: list[int] = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            points = int(browser.run(POINTS))
            if not seen or points != seen[-1]:
                seen.append(points)
            if (
                points == 6
                and browser.run("return document.getElementById('status').textContent")
                == "succeeded"
            ):
                break
            time.sleep(0.2)
        # The chart gained its points one epoch at a time while the page was open.
        assert seen[-1] == 6, seen
        assert len([p for p in seen if 0 < p < 6]) >= 2, seen
        assert seen == sorted(seen), seen
        series = browser.run("return window.trainqCharts.loss.data[1]")
        history = live.get(job["id"])["history"]
        assert series == pytest.approx([h["metrics"]["loss"] for h in history])
        rows = browser.run("return document.querySelectorAll('#history tbody tr').length")
        assert rows == 6
        assert browser.run("return document.getElementById('download').hidden") is False
        assert browser.run("return document.getElementById('cancel').hidden") is True
        text = browser.run("return document.getElementById('test-metrics').textContent")
        assert text.startswith("test: accuracy=")


def test_the_api_docs_page_renders_under_its_content_security_policy(live: Live) -> None:
    with chromium() as browser:
        browser.get(f"{live.url}/docs")
        # Its scripts ran (Swagger UI drew its page from the document it fetched); what it says
        # of the document is its own matter.
        wait_until(lambda: browser.run("return !!document.querySelector('#docs .swagger-ui')"),
                   30, "Swagger UI to draw its page")  # fmt: skip
        # Its styles came from its stylesheet (an inline <style> would have been blocked).
        assert browser.run("return document.querySelectorAll('style').length") == 0
        assert browser.run(
            "return [...document.styleSheets].some(s => (s.href || '').endsWith('swagger-ui.css'))"
        )
