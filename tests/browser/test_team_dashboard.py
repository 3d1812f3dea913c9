"""A team's day on the dashboard, in real headless Chromium: the job list filtered by status, name
and day with a new job showing up without a reload; a job's page with its place in the queue
while it waits, its spec, provenance, events and every metric it records, cancelled from the
page; a spec submitted from the browser, its 422 shown at the fields it names, then accepted.
Screenshots are kept under var/test-artifacts/browser/."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.browser.test_sweeps import sign_in
from tests.browser.webdriver import Browser, chromium
from tests.live import Live, LiveStacks
from tests.specs import quickstart
from tests.support import wait_until
from web.openapi import SPEC_EXAMPLE

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
TOP_K = "sparse_top_k_categorical_accuracy"


@pytest.fixture(scope="module")
def live(live_stacks: LiveStacks) -> Live:
    """The shared service on SQLite (tests/live.py)."""
    return live_stacks.get("sqlite")


def _spec(name: str, epochs: int) -> dict[str, Any]:
    spec = quickstart(epochs=epochs, batch_size=128)  # an epoch in a second or two
    spec["name"] = name
    spec["compile"]["metrics"] = ["accuracy", TOP_K]
    return spec


def _listed(browser: Browser) -> list[str]:
    return browser.run(
        "return [...document.querySelectorAll('#jobs tbody tr')].map(r => r.dataset.jobId)"
    )


def _text(browser: Browser, element_id: str) -> str:
    return browser.run("return document.getElementById(arguments[0]).textContent", element_id)


def _set_day(browser: Browser, element_id: str, day: str) -> None:
    # A date input's typed form follows the browser's locale; a person picks the day, which
    # sets its value and fires change.
    browser.run(
        "var e = document.getElementById(arguments[0]); e.value = arguments[1];"
        "e.dispatchEvent(new Event('change'))",
        element_id,
        day,
    )


def test_the_list_filters_by_status_name_and_day_and_a_new_job_appears_live(live: Live) -> None:
    tag = f"team-{uuid.uuid4().hex[:8]}"
    first = live.submit(_spec(f"{tag} first", epochs=1))
    other = live.submit(_spec("someone else's", epochs=1))
    assert live.wait(first["id"])["status"] == "succeeded"
    with chromium() as browser:
        sign_in(browser, live)
        browser.get(f"{live.url}/")
        browser.type("#filter-name", tag.upper())  # any case
        wait_until(lambda: _listed(browser) == [first["id"]], 30, "the list filtered by name")
        assert browser.run("return window.location.search") == f"?name={tag.upper()}"
        browser.run("window.notReloaded = true")  # gone if the page were loaded again

        second = live.submit(_spec(f"{tag} second", epochs=1))  # shows up, as it is
        wait_until(lambda: _listed(browser) == [second["id"], first["id"]], 30, "the new job")
        assert browser.run("return window.notReloaded") is True
        assert other["id"] not in _listed(browser)

        browser.click("#filter-status option[value='queued']")  # nothing of it waits any more
        live.wait(second["id"])
        wait_until(lambda: _listed(browser) == [], 30, "no queued job of the name")
        assert not browser.run("return document.getElementById('jobs-none-match').hidden")
        browser.click("#filter-status option[value='succeeded']")
        wait_until(lambda: _listed(browser) == [second["id"], first["id"]], 30, "both succeeded")
        assert browser.run("return window.notReloaded") is True

        today = datetime.now(UTC).date()
        _set_day(browser, "filter-to", str(today - timedelta(days=1)))  # made today, not before
        wait_until(lambda: _listed(browser) == [], 30, "none up to yesterday")
        _set_day(browser, "filter-from", str(today))
        _set_day(browser, "filter-to", str(today))
        wait_until(lambda: _listed(browser) == [second["id"], first["id"]], 30, "today's")
        query = browser.run("return window.location.search")
        assert query == f"?status=succeeded&name={tag.upper()}&from={today}&to={today}", query

        browser.get(f"{live.url}/{query}")  # the address keeps the filters
        wait_until(lambda: _listed(browser) == [second["id"], first["id"]], 30, "the same list")
        assert browser.run("return document.getElementById('filter-status').value") == "succeeded"
        rows = browser.run(
            "return [...document.querySelectorAll('#jobs tbody tr')]"
            ".map(r => [...r.cells].slice(1, 3).map(c => c.textContent))"
        )
        assert rows == [[f"{tag} second", "succeeded"], [f"{tag} first", "succeeded"]]
        assert _text(browser, "jobs-count") == "2 jobs"
        browser.screenshot("jobs_filtered")


def test_a_job_page_shows_its_queue_place_spec_provenance_events_and_every_metric(
    live: Live,
) -> None:
    long = live.submit(_spec("long one", epochs=500))  # holds the one worker slot till cancelled
    try:
        _job_pages(live, long)
    finally:  # the shared worker is not kept busy by a test that failed
        requests.post(f"{live.url}/api/v1/jobs/{long['id']}/cancel", headers=live.alice, timeout=30)


def _job_pages(live: Live, long: dict[str, Any]) -> None:
    wait_until(lambda: live.get(long["id"])["status"] == "running", 120, "the long job to run")
    waiting = live.submit(_spec("waits its turn", epochs=1))
    with chromium() as browser:
        sign_in(browser, live)
        browser.get(f"{live.url}/jobs/{waiting['id']}")

        def queue_as_the_api_says() -> bool:
            place = live.get(waiting["id"])["queue"]
            shown = browser.run(
                "return document.getElementById('queue').hidden ? null : "
                "[document.getElementById('queue-position').textContent,"
                " document.getElementById('queue-reason').textContent]"
            )
            return place is not None and shown == [str(place["position"]), place["reason"]]

        wait_until(queue_as_the_api_says, 30, "the queue's place and reason")
        assert "slot" in _text(browser, "queue-reason") or "limit" in _text(browser, "queue-reason")
        assert not browser.run("return document.getElementById('provenance-none').hidden")
        browser.screenshot("job_page_queued")

        browser.get(f"{live.url}/jobs/{long['id']}")
        points = f"return Number(document.getElementById('chart-{TOP_K}')?.dataset.points || 0)"
        wait_until(lambda: browser.run(points) >= 2, 120, f"two epochs of {TOP_K} drawn")
        browser.click("#cancel")  # stops after its current batch, keeping the last epoch's model
        wait_until(lambda: _text(browser, "status") == "cancelled", 120, "the job cancelled")
        job = live.get(long["id"])
        history = job["history"]
        wait_until(lambda: browser.run(points) == len(history), 30, "every epoch drawn")
        drawn = browser.run(f"return window.trainqCharts['{TOP_K}'].data")
        assert drawn[0] == [h["epoch"] for h in history]
        assert drawn[1] == pytest.approx([h["metrics"][TOP_K] for h in history])
        assert drawn[2] == pytest.approx([h["metrics"][f"val_{TOP_K}"] for h in history])

        # Every recorded metric has its row, with its value at the last epoch.
        names = sorted(history[-1]["metrics"])
        assert {"loss", "val_loss", "accuracy", TOP_K, f"val_{TOP_K}"} <= set(names)
        table = browser.run(
            "return [...document.querySelectorAll('#metrics tbody tr')]"
            ".map(r => [r.dataset.metric, r.cells[1].textContent])"
        )
        assert table == [[n, f"{history[-1]['metrics'][n]:.4f}"] for n in names]

        # What it trained with, as the worker recorded it.
        prov = job["provenance"]
        assert _text(browser, "prov-seed") == "42 (from the spec)"
        assert _text(browser, "prov-spec-sha256") == prov["spec_sha256"]
        assert (
            _text(browser, "prov-dataset") == f"mnist-sample (SHA-256 {prov['dataset']['sha256']})"
        )
        versions = _text(browser, "prov-versions")
        assert f"tensorflow {prov['versions']['tensorflow']}" in versions
        assert f"keras {prov['versions']['keras']}" in versions
        assert prov["worker"] in _text(browser, "prov-worker")
        assert json.loads(_text(browser, "spec")) == job["spec"]

        # Its events, in order: queued, running, an epoch each, cancelled.
        events = browser.run(
            "return [...document.querySelectorAll('#events tbody tr')]"
            ".map(r => [r.dataset.type, r.cells[3].textContent])"
        )
        assert events[0] == ["status", "queued"]
        assert events[1] == ["status", "running — attempt 1"]
        assert [e[0] for e in events[2:-1]] == ["epoch"] * len(history)
        assert events[2][1].startswith("epoch 1: accuracy=") and f" {TOP_K}=" in events[2][1]
        assert events[-1] == ["status", "cancelled — model kept"]
        assert browser.run("return document.getElementById('download').hidden") is False
        assert browser.run("return document.getElementById('cancel').hidden") is True
        assert _text(browser, "message") == ""
        browser.screenshot("job_page")

        # The job that waited starts once the slot is free: no place in the queue any more.
        browser.get(f"{live.url}/jobs/{waiting['id']}")
        wait_until(lambda: _text(browser, "status") == "succeeded", 120, "the waiting job's run")
        assert browser.run("return document.getElementById('queue').hidden") is True
        assert not browser.run("return document.getElementById('provenance').hidden")


def _field(css_path: str) -> str:
    return f'#fields input[data-field="{css_path}"]'


def _retype(browser: Browser, values: dict[str, str]) -> None:
    for path, value in values.items():
        browser.clear(_field(path))
        browser.type(_field(path), value)


def _beside(browser: Browser, path: str) -> str | None:
    """The error shown beside a field's input, or None."""
    return browser.run(
        "var e = document.querySelector(arguments[0]).parentNode.querySelector('.field-error');"
        "return e && e.textContent",
        _field(path),
    )


def _api_errors(live: Live, spec: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The API's own 422 for a spec: its message and each field's error."""
    r = requests.post(f"{live.url}/api/v1/jobs", json=spec, headers=live.alice, timeout=30)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    return error["message"], {e["field"]: e["message"] for e in error["details"]["errors"]}


def test_a_spec_submitted_from_the_browser_shows_its_errors_at_their_fields(live: Live) -> None:
    name = f"from the browser {uuid.uuid4().hex[:8]}"
    units = "model.layers[1].config.units"
    spec = copy.deepcopy(SPEC_EXAMPLE)  # what the page starts from
    spec["name"] = name
    with chromium() as browser:
        sign_in(browser, live)
        browser.get(f"{live.url}/")
        browser.click("#nav-submit")
        epochs = _field("fit.epochs")
        wait_until(lambda: browser.run(f"return !!document.querySelector('{epochs}')"), 30,
                   "the spec's inputs")  # fmt: skip
        assert browser.run(f"return document.querySelector('{epochs}').value") == "1"

        # A key taken out (in the spec as JSON): its error at the part of the spec that held it.
        browser.click("#as-json summary")
        as_json = browser.run("return document.getElementById('spec-json').value")
        assert json.loads(as_json) == SPEC_EXAMPLE
        without = copy.deepcopy(SPEC_EXAMPLE)
        del without["model"]["layers"][1]["class_name"]
        browser.run(
            "document.getElementById('spec-json').value = arguments[0]", json.dumps(without)
        )
        browser.click("#use-json")
        gone = _field("model.layers[1].class_name")
        assert browser.run(f"return document.querySelector('{gone}')") is None
        browser.click("#submit")
        message, errors = _api_errors(live, without)
        assert list(errors) == ["model.layers[1].class_name"], errors
        layer = '#fields fieldset[data-field="model.layers[1]"] > .field-error'
        wait_until(lambda: browser.run(f"return !!document.querySelector('{layer}')"), 30,
                   "the error at its layer")  # fmt: skip
        assert browser.run(f"return document.querySelector('{layer}').textContent") \
            == f"model.layers[1].class_name: {errors['model.layers[1].class_name']}"  # fmt: skip
        assert _text(browser, "submit-error") == message
        browser.run("document.getElementById('spec-json').value = arguments[0]", as_json)
        browser.click("#use-json")  # the example again, its errors cleared
        assert browser.run("return document.querySelectorAll('.field-error').length") == 0

        # Two fields wrong: each error beside its input, as the API words it.
        _retype(browser, {"name": name, "fit.epochs": "0", "fit.batch_size": "many"})
        browser.click("#submit")
        spec["fit"].update(epochs=0, batch_size="many")
        message, errors = _api_errors(live, spec)
        assert set(errors) == {"fit.epochs", "fit.batch_size"}, errors
        wait_until(lambda: _beside(browser, "fit.epochs") is not None, 30, "the errors shown")
        for path, said in errors.items():
            assert _beside(browser, path) == said
            assert browser.run(
                "return document.querySelector(arguments[0]).getAttribute('aria-invalid')",
                _field(path),
            ) == "true"  # fmt: skip
        assert _beside(browser, "fit.validation_split") is None
        assert _text(browser, "submit-error") == message
        assert browser.run("return window.location.pathname") == "/submit"
        browser.screenshot("submit_errors")

        # Those fixed, a layer's config is checked: its error beside that layer's input.
        _retype(browser, {"fit.epochs": "1", "fit.batch_size": "128", units: "many"})
        browser.click("#submit")
        spec["fit"].update(epochs=1, batch_size=128)
        spec["model"]["layers"][1]["config"]["units"] = "many"
        message, errors = _api_errors(live, spec)
        assert list(errors) == [units], errors
        wait_until(lambda: _beside(browser, units) == errors[units], 30, "the layer's error")
        assert _beside(browser, "fit.epochs") is None  # the fixed fields' errors are gone
        assert _beside(browser, "fit.batch_size") is None
        assert browser.run("return document.querySelectorAll('.field-error').length") == 1

        _retype(browser, {units: "64"})
        browser.click("#submit")
        wait_until(lambda: browser.run("return window.location.pathname").startswith("/jobs/"),
                   30, "the new job's page")  # fmt: skip
        job_id = browser.run("return window.location.pathname").split("/")[-1]
        wait_until(lambda: _text(browser, "job-name") == name, 30, "the job's name")
        job = live.get(job_id)
        assert job["spec"]["model"]["layers"][1]["config"]["units"] == 64
        assert (job["spec"]["fit"]["epochs"], job["spec"]["fit"]["batch_size"]) == (1, 128)

        browser.click("#again")  # its spec, to change and submit again
        wait_until(lambda: browser.run(f"return document.querySelector('{_field('name')}')?.value")
                   == name, 30, "the job's spec in the inputs")  # fmt: skip
        assert browser.run(f"return document.querySelector('{_field(units)}').value") == "64"
        # What was chosen, not the stored spec's nulls (each a field left to its default).
        values = browser.run("return [...document.querySelectorAll('#fields input')]"
                             ".map(i => i.dataset.field + '=' + i.value)")  # fmt: skip
        assert not [v for v in values if v.endswith("=null")], values
        assert browser.run(f"return document.querySelector('{_field('fit.sample_weight')}')") \
            is None  # fmt: skip
        again = json.loads(browser.run("return document.getElementById('spec-json').value"))
        assert "json" not in again["model"] and "sample_weight" not in again["fit"]
        assert again["fit"]["epochs"] == 1 and again["seed"] == job["spec"]["seed"]
        assert browser.run("return document.querySelector('#from a').getAttribute('href')") \
            == f"/jobs/{job_id}"  # fmt: skip

        browser.click("#nav-jobs")  # and it is in the list
        wait_until(lambda: job_id in _listed(browser), 30, "the job in the list")
        assert live.wait(job_id)["status"] == "succeeded"
