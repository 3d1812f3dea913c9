"""The event stream in-process: keep-alive comments while nothing happens, and the end."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shared.jobs import lifecycle
from shared.settings import Settings
from tests.specs import quickstart
from web import events as sse


def test_keepalive_while_queued_then_events_until_the_end(
    app: Flask, client: FlaskClient, settings: Settings, alice: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(sse, "KEEPALIVE_SECONDS", 0.2)
    monkeypatch.setattr(sse, "POLL_SECONDS", 0.1)
    job = client.post("/api/v1/jobs", json=quickstart(epochs=2), headers=alice["headers"]).json
    assert job is not None
    sessions = app.extensions["trainq"]["sessions"]
    chunks = sse.stream(sessions, settings.redis_url, job["id"], 0)
    assert next(chunks).startswith("retry: ")
    first = next(chunks)
    assert first.startswith("id: 1\nevent: status\n") and '"status": "queued"' in first
    assert next(chunks) == ": keep-alive\n\n"  # nothing happened: the connection is kept open

    assert lifecycle.start(sessions, job["id"], "test")
    lifecycle.record_epoch(sessions, job["id"], 1, {"loss": 0.5, "accuracy": float("nan")}, 0.1)
    lifecycle.fail(sessions, job["id"], "RuntimeError: stopped by the test")
    rest = [c for c in chunks if not c.startswith(":")]  # the generator ends by itself
    data = [json.loads(c.split("data: ", 1)[1]) for c in rest]
    assert [d["id"] for d in data] == [2, 3, 4]
    assert data[1] == {**data[1], "type": "epoch", "epoch": 1,
                       "metrics": {"loss": 0.5, "accuracy": None}}  # fmt: skip
    assert data[2]["status"] == "failed" and data[2]["error"].startswith("RuntimeError")


def test_a_negative_last_event_id_is_refused(client: FlaskClient, alice: dict[str, Any]) -> None:
    job = client.post("/api/v1/jobs", json=quickstart(), headers=alice["headers"]).json
    assert job is not None
    r = client.get(
        f"/api/v1/jobs/{job['id']}/events", headers={**alice["headers"], "Last-Event-ID": "-1"}
    )
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid_input"  # type: ignore[index]
