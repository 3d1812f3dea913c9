"""The compare page in real headless Chromium: three jobs picked in the job list that differ only
in the learning rate show one row of differences, and their loss curves overlaid (a screenshot
kept)."""

from __future__ import annotations

import pytest
import requests

from tests.browser.webdriver import Browser, chromium
from tests.integration.conftest import Live
from tests.live import LiveStacks
from tests.specs import quickstart
from tests.support import wait_until

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
RATES = (0.01, 0.001, 0.0001)
LR = "compile.optimizer.config.learning_rate"


@pytest.fixture(scope="module")
def live(live_stacks: LiveStacks) -> Live:
    """The shared service on SQLite (tests/live.py)."""
    return live_stacks.get("sqlite")


def _spec(lr: float) -> dict[str, object]:
    spec = quickstart(epochs=2)
    spec["compile"]["optimizer"] = {"class_name": "Adam", "config": {"learning_rate": lr}}
    return spec


def sign_in(browser: Browser, live: Live) -> None:
    browser.get(f"{live.url}/compare")
    token = live.alice["Authorization"].split(" ", 1)[1]
    browser.run("window.localStorage.setItem('trainq_token', arguments[0])", token)


def test_three_jobs_differing_in_the_learning_rate(live: Live) -> None:
    ids = [live.submit(_spec(lr))["id"] for lr in RATES]
    jobs = [live.wait(job_id) for job_id in ids]
    assert [j["status"] for j in jobs] == ["succeeded"] * 3
    with chromium() as browser:
        sign_in(browser, live)
        browser.get(f"{live.url}/")  # picked from the job list
        for job_id in ids:
            tick = f"tr[data-job-id='{job_id}'] input.pick"
            wait_until(lambda t=tick: browser.run(f'return !!document.querySelector("{t}")'),
                       30, "the job in the list")  # fmt: skip
            browser.run(f'document.querySelector("{tick}").click()')  # one step: the list
            # is drawn again every 3 s, and a found element could be gone by a second one
        browser.click("#compare-selected")
        wait_until(lambda: "/compare?jobs=" in browser.run("return window.location.href"),
                   30, "the compare page")  # fmt: skip
        assert browser.run("return window.location.search") == f"?jobs={','.join(ids)}"
        wait_until(lambda: browser.run("return document.getElementById('chart-compare')"
                                       ".dataset.series") == "3", 30, "the curves")  # fmt: skip
        rows = browser.run(
            "return [...document.querySelectorAll('#spec tbody tr')]"
            ".map(r => [...r.cells].map(c => c.textContent))"
        )
        assert rows == [[LR, "0.01000", "0.001000", "0.0001000"]], rows
        assert browser.run("return document.getElementById('metric').value") == "loss"
        drawn = browser.run("return window.trainqComparison.data")
        losses = [[e["metrics"]["loss"] for e in j["history"]] for j in jobs]
        assert drawn[0] == [1, 2]
        for curve, loss in zip(drawn[1:], losses, strict=True):  # three curves: each job's losses
            assert curve == pytest.approx(loss)
        assert browser.run("return !!document.querySelector('#chart-compare canvas')")
        browser.screenshot("compare_learning_rates")
        browser.click("#show-all")  # every path: the same spec otherwise
        every = browser.run("return document.querySelectorAll('#spec tbody tr').length")
        found = requests.get(f"{live.url}/api/v1/compare?jobs={','.join(ids)}",
                             headers=live.alice, timeout=30).json()  # fmt: skip
        assert every == len(found["spec"]) > 1
