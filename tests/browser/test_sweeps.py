"""The sweep pages in real headless Chromium: the list, a sweep's trials filling in, sorted by the
objective, its scatter charts and best curves drawn, and Cancel."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
import requests

from tests.browser.webdriver import Browser, chromium
from tests.integration.conftest import Live
from tests.live import LiveStacks
from tests.support import ROOT, wait_until

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]

EXAMPLE: dict[str, Any] = json.loads((ROOT / "examples" / "sweep.json").read_text())


@pytest.fixture(scope="module")
def live(live_stacks: LiveStacks) -> Live:
    """The shared service on SQLite (tests/live.py)."""
    return live_stacks.get("sqlite")


def submit_sweep(live: Live, trials: int, epochs: int) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE)
    body["spec"]["fit"]["epochs"] = epochs
    body.update(max_trials=trials, max_concurrent=trials)
    r = requests.post(f"{live.url}/api/v1/sweeps", json=body, headers=live.alice, timeout=120)
    assert r.status_code == 202, r.text
    return r.json()


def get_sweep(live: Live, sweep_id: str) -> dict[str, Any]:
    r = requests.get(f"{live.url}/api/v1/sweeps/{sweep_id}", headers=live.alice, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def sign_in(browser: Browser, live: Live) -> None:
    browser.get(f"{live.url}/sweeps")
    token = live.alice["Authorization"].split(" ", 1)[1]
    browser.run("window.localStorage.setItem('trainq_token', arguments[0])", token)


def column(browser: Browser, attribute: str) -> list[str]:
    return browser.run(
        f"return [...document.querySelectorAll('#trials tbody tr')].map(r => r.dataset.{attribute})"
    )


def test_a_sweep_page_fills_in_sorts_and_draws_its_charts(live: Live) -> None:
    sweep = submit_sweep(live, trials=3, epochs=2)
    other = submit_sweep(live, trials=1, epochs=2)  # its trial waits behind the first sweep's
    with chromium() as browser:
        sign_in(browser, live)
        browser.get(f"{live.url}/")
        assert browser.run("return document.getElementById('nav-sweeps').getAttribute('href')") \
            == "/sweeps"  # fmt: skip
        browser.click("#nav-sweeps")
        for s in (sweep, other):
            wait_until(lambda s=s: browser.run(
                f"return !!document.querySelector(\"tr[data-sweep-id='{s['id']}']\")"),
                30, "the sweep in the list")  # fmt: skip
        browser.screenshot("sweeps_list")

        # Cancel, on the page of the sweep that has not started yet.
        browser.get(f"{live.url}/sweeps/{other['id']}")
        wait_until(lambda: browser.run("return !document.getElementById('cancel').hidden"),
                   30, "the cancel button")  # fmt: skip
        browser.click("#cancel")
        wait_until(lambda: browser.run("return document.getElementById('status').textContent")
                   == "cancelled", 120, "the sweep to be cancelled")  # fmt: skip
        assert browser.run("return document.getElementById('cancel').hidden") is True
        assert get_sweep(live, other["id"])["status"] == "cancelled"

        # The first sweep's page, left open while its trials train.
        browser.get(f"{live.url}/sweeps/{sweep['id']}")
        valued: list[int] = []
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            values = [v for v in column(browser, "value") if v]
            status = browser.run("return document.getElementById('status').textContent")
            if not valued or len(values) != valued[-1]:
                valued.append(len(values))
                if status == "running" and 0 < len(values) < 3:
                    browser.screenshot("sweep_page_running")
            if status != "running" and len(values) == 3:
                break
            time.sleep(0.3)
        assert status == "succeeded", status
        assert valued[-1] == 3 and valued[0] < 3, valued  # the rows filled in as trials ended
        done = get_sweep(live, sweep["id"])
        paths = list(done["space"])
        assert len(paths) == 3
        heads = browser.run(
            "return [...document.querySelectorAll('#trials thead th')].map(t => t.textContent)"
        )
        assert heads[3:6] == paths
        assert sorted(column(browser, "trial")) == ["0", "1", "2"]
        cells = browser.run(
            "return [...document.querySelectorAll('#trials tbody tr')]"
            ".map(r => [...r.cells].map(c => c.textContent))"
        )
        assert all(c[2] in ("succeeded", "pruned") and c[-1] == "2/2" for c in cells), cells
        assert browser.run("return document.getElementById('counts').textContent")
        assert browser.run("return document.getElementById('objective').textContent") \
            == "val_accuracy (maximize)"  # fmt: skip
        best = done["best"]
        assert browser.run("return document.querySelector('#best a').getAttribute('href')") \
            == f"/jobs/{best['job_id']}"  # fmt: skip

        # Sorted by the objective: the best (highest val_accuracy) first, then the worst first.
        browser.click("#sort-objective")
        ordered = [float(v) for v in column(browser, "value")]
        assert ordered == sorted(ordered, reverse=True)
        assert column(browser, "jobId")[0] == best["job_id"]
        browser.click("#sort-objective")
        assert [float(v) for v in column(browser, "value")] == sorted(ordered)

        # One scatter chart per searched path, each with the three trials' points.
        scatter = browser.run(
            "return [...document.querySelectorAll('#scatter .scatter')]"
            ".map(b => [b.dataset.path, Number(b.dataset.points), !!b.querySelector('canvas')])"
        )
        assert scatter == [[p, 3, True] for p in paths]
        drawn = browser.run("return window.trainqSweep.scatter")
        for path in paths:
            xs = drawn[path][0]
            assert sorted(xs) == sorted(t["params"][path] for t in done["tried"])
            ys = [y for series in drawn[path][1:] for y in series if y is not None]
            assert sorted(ys) == pytest.approx(sorted(t["value"] for t in done["tried"]))

        # The best trials' curves: each trial's val_accuracy per epoch, from its job's history.
        curves = browser.run(
            "var c = document.getElementById('chart-curves');"
            "return [Number(c.dataset.series), Number(c.dataset.points),"
            " !!c.querySelector('canvas')]"
        )
        assert curves == [3, 6, True]
        shown = browser.run("return window.trainqSweep.curves")
        by_trial = {t["trial"]: t for t in done["tried"]}
        for trial, series in zip(shown["trials"], shown["data"][1:], strict=True):
            history = live.get(by_trial[trial]["job_id"])["history"]
            assert series == pytest.approx([h["metrics"]["val_accuracy"] for h in history])
        assert browser.run("return document.getElementById('message').textContent") == ""
        path = browser.screenshot("sweep_page")
        assert path.stat().st_size > 10_000

        # A trial's job page names its sweep and trial; a finished trial's model can be downloaded.
        browser.get(f"{live.url}/jobs/{best['job_id']}")
        wait_until(lambda: browser.run("return !document.getElementById('sweep').hidden"),
                   30, "the job's sweep")  # fmt: skip
        assert browser.run("return document.getElementById('sweep-link').getAttribute('href')") \
            == f"/sweeps/{sweep['id']}"  # fmt: skip
        assert browser.run("return document.getElementById('sweep-trial').textContent") \
            == str(best["trial"])  # fmt: skip
        assert browser.run("return document.getElementById('download').hidden") is False
        assert browser.run("return document.getElementById('cancel').hidden") is True

        # The best trials side by side: the sweep page's link opens them on the compare page.
        browser.get(f"{live.url}/sweeps/{sweep['id']}")
        wait_until(lambda: not browser.run("return document.getElementById('compare-best').hidden"),
                   30, "the compare link")  # fmt: skip
        ranked = sorted((t for t in done["tried"] if t["value"] is not None),
                        key=lambda t: (-t["value"], t["trial"]))  # fmt: skip
        assert browser.run("return document.getElementById('compare-best').getAttribute('href')") \
            == "/compare?jobs=" + ",".join(t["job_id"] for t in ranked)  # fmt: skip
        browser.click("#compare-best")
        series = "return document.getElementById('chart-compare').dataset.series"
        wait_until(lambda: browser.run(series) == "3", 30, "three trials compared")
