"""The live event stream, through a real gunicorn server and a real Celery worker."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from tests.integration.conftest import Live
from tests.specs import quickstart

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


def read_events(response: requests.Response, stop_after_epoch: int | None = None) -> list[Any]:
    """Parse a text/event-stream body into (id, type, data) events and comment lines."""
    out: list[Any] = []
    fields: dict[str, str] = {}
    for raw in response.iter_lines(decode_unicode=True):
        line = raw or ""
        if line.startswith(":"):
            out.append(("comment", line))
            continue
        if line:
            key, _, value = line.partition(":")
            fields[key] = value.removeprefix(" ")
            continue
        if "data" in fields:
            data = json.loads(fields["data"])
            out.append((int(fields["id"]), fields["event"], data))
            if stop_after_epoch is not None and data.get("epoch") == stop_after_epoch:
                return out
        fields = {}
    return out


def test_resumes_after_a_disconnect_without_gap_or_duplicate(live: Live) -> None:
    job = live.submit(quickstart(epochs=5))
    url = f"{live.url}/api/v1/jobs/{job['id']}/events"
    with requests.get(url, headers=live.alice, stream=True, timeout=120) as first:
        assert first.status_code == 200
        assert first.headers["Content-Type"].startswith("text/event-stream")
        before = [e for e in read_events(first, stop_after_epoch=2) if e[0] != "comment"]
    # Disconnected after epoch 2: the job goes on training meanwhile.
    last_id = before[-1][0]
    assert live.get(job["id"])["status"] == "running"
    headers = {**live.alice, "Last-Event-ID": str(last_id)}
    started = time.monotonic()
    with requests.get(url, headers=headers, stream=True, timeout=120) as second:
        after = [e for e in read_events(second) if e[0] != "comment"]
    assert time.monotonic() - started < 120  # the stream closed by itself when the job ended

    events = before + after
    ids = [e[0] for e in events]
    assert ids == list(range(1, len(ids) + 1))  # no gap, no duplicate
    kinds = [(e[1], e[2].get("status") or e[2].get("epoch")) for e in events]
    assert kinds == [
        ("status", "queued"),
        ("status", "running"),
        *[("epoch", n) for n in range(1, 6)],
        ("status", "succeeded"),
    ]
    assert [e[2]["epoch"] for e in after if e[1] == "epoch"] == [3, 4, 5]
    finished = live.get(job["id"])
    for event, row in zip([e for e in events if e[1] == "epoch"], finished["history"], strict=True):
        assert event[2]["metrics"] == row["metrics"]
    assert events[-1][2]["test_metrics"] == finished["test_metrics"]

    # A client that comes back after the end gets nothing new, and the stream closes at once.
    headers["Last-Event-ID"] = str(ids[-1])
    with requests.get(url, headers=headers, stream=True, timeout=30) as late:
        assert [e for e in read_events(late) if e[0] != "comment"] == []


def test_failed_job_stream_ends_with_the_reason(live: Live) -> None:
    spec = quickstart(epochs=1)
    spec["fit"].pop("validation_split")  # a label the model has no class for fails in training
    spec["fit"]["validation_data"] = {"x": [[[0] * 28] * 28], "y": [99]}
    job = live.submit(spec)
    url = f"{live.url}/api/v1/jobs/{job['id']}/events"
    with requests.get(url, headers=live.alice, stream=True, timeout=120) as r:
        events = [e for e in read_events(r) if e[0] != "comment"]
    assert events[-1][1:3][0] == "status" and events[-1][2]["status"] == "failed"
    assert events[-1][2]["error"]  # the reason, as the job records it
    assert events[-1][2]["error"] == live.get(job["id"])["error"]


def test_stream_of_someone_elses_job_is_not_found(live: Live) -> None:
    job = live.submit(quickstart(epochs=1))
    r = requests.get(f"{live.url}/api/v1/jobs/{job['id']}/events", headers=live.bob, timeout=30)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    bad = requests.get(
        f"{live.url}/api/v1/jobs/{job['id']}/events",
        headers={**live.alice, "Last-Event-ID": "abc"},
        timeout=30,
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"
    live.wait(job["id"])
