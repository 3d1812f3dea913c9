"""Polling a job: answered from the API process's memory while nothing it shows has changed,
and every change, wherever it was made, seen at the very next poll."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

from shared import stamps
from shared.auth import get_user, issue_token, revoke_token, set_disabled
from shared.db import session_scope, sessions
from shared.jobs import lifecycle
from shared.models import utcnow
from shared.settings import Settings
from tests.specs import quickstart


@contextmanager
def counted() -> Iterator[list[str]]:
    """The SQL statements run meanwhile, by any engine."""
    statements: list[str] = []

    def note(*args: Any) -> None:
        statements.append(args[2])

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", note)


@pytest.fixture(autouse=True)
def stamps_read_every_poll(app: Flask) -> None:
    """Each poll reads the stamps, so that a change must show at the very next one."""
    app.extensions["trainq"]["status"].reuse_seconds = 0.0


def poll(client: FlaskClient, job_id: str, headers: dict[str, str]) -> tuple[Any, list[str]]:
    with counted() as statements:
        r = client.get(f"/api/v1/jobs/{job_id}", headers=headers)
    return r, statements


def running_job(client: FlaskClient, settings: Settings, headers: dict[str, str]) -> str:
    job = client.post("/api/v1/jobs", json=quickstart(epochs=3), headers=headers).json
    assert job is not None
    assert lifecycle.start(sessions(settings.database_url), job["id"], "test-worker")
    return str(job["id"])


def test_a_running_job_is_read_once_until_it_changes(
    client: FlaskClient, settings: Settings, alice: dict[str, Any]
) -> None:
    headers = alice["headers"]
    queued = client.post("/api/v1/jobs", json=quickstart(), headers=headers).json
    assert queued is not None
    for _ in range(2):  # a queued job's place depends on other jobs: read every time
        r, statements = poll(client, queued["id"], headers)
        assert r.status_code == 200 and r.json["queue"] is not None and statements

    job_id = running_job(client, settings, headers)
    first, statements = poll(client, job_id, headers)
    assert first.json["status"] == "running" and statements
    again, statements = poll(client, job_id, headers)
    assert statements == []  # from memory, the very bytes the route sends
    assert (again.data, again.content_type) == (first.data, first.content_type)
    assert {k: v for k, v in again.json.items() if k != "progress"} == {
        k: v for k, v in first.json.items() if k != "progress"
    }
    assert again.json["progress"]["text"] == "epoch 1 of 3"

    # A worker (another process, its own session) records an epoch: the next poll shows it.
    lifecycle.record_epoch(sessions(settings.database_url), job_id, 1, {"loss": 0.5}, 0.1)
    r, statements = poll(client, job_id, headers)
    assert statements and [h["epoch"] for h in r.json["history"]] == [1]
    assert r.json["progress"]["text"] == "epoch 2 of 3"
    lifecycle.fail(sessions(settings.database_url), job_id, "RuntimeError: stopped by the test")
    r, _ = poll(client, job_id, headers)
    assert r.json["status"] == "failed" and r.json["error"].startswith("RuntimeError")
    r, statements = poll(client, job_id, headers)
    assert statements == [] and r.json["status"] == "failed"

    other = client.get(f"/api/v1/jobs/{job_id}", headers={"Authorization": "Bearer nope"})
    assert other.status_code == 401  # what is kept is kept per token


def test_revoked_disabled_and_expired_tokens_are_refused_at_the_next_poll(
    client: FlaskClient, settings: Settings, alice: dict[str, Any]
) -> None:
    url = settings.database_url
    job_id = running_job(client, settings, alice["headers"])
    with session_scope(url) as s:
        user = get_user(s, "alice")
        second = issue_token(s, user)
        # Long enough to outlive the polls before its expiry on a loaded machine.
        expires = utcnow() + timedelta(seconds=8)
        short = issue_token(s, user, expires_at=expires)
    tokens = {name: {"Authorization": f"Bearer {t}"} for name, t in
              (("first", alice["token"]), ("second", second), ("short", short))}  # fmt: skip
    for headers in tokens.values():
        for _ in range(2):
            assert client.get(f"/api/v1/jobs/{job_id}", headers=headers).status_code == 200
        assert poll(client, job_id, headers)[1] == []  # each token's answer is kept

    with session_scope(url) as s:
        revoke_token(s, alice["token"])
    assert poll(client, job_id, tokens["first"])[0].status_code == 401
    assert poll(client, job_id, tokens["second"])[0].status_code == 200

    with session_scope(url) as s:
        set_disabled(s, "alice")
    assert poll(client, job_id, tokens["second"])[0].status_code == 401
    with session_scope(url) as s:
        set_disabled(s, "alice", False)
    assert poll(client, job_id, tokens["short"])[0].status_code == 200
    assert poll(client, job_id, tokens["short"])[1] == []
    time.sleep(max(0.0, (expires - utcnow()).total_seconds()) + 0.2)  # the short one expires
    r, _ = poll(client, job_id, tokens["short"])
    assert r.status_code == 401 and "expired" in r.json["error"]["message"]


def test_without_redis_every_poll_reads_the_database(
    client: FlaskClient, settings: Settings, alice: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = running_job(client, settings, alice["headers"])
    dead = redis.Redis(port=1, socket_connect_timeout=0.5)  # nothing listens on port 1
    monkeypatch.setattr(stamps, "redis_client", lambda: dead)
    for _ in range(2):
        r, statements = poll(client, job_id, alice["headers"])
        assert r.status_code == 200 and r.json["status"] == "running" and statements


def test_a_change_shows_once_the_stamps_read_before_it_have_served(
    app: Flask, client: FlaskClient, settings: Settings, alice: dict[str, Any]
) -> None:
    app.extensions["trainq"]["status"].reuse_seconds = 1.0
    job_id = running_job(client, settings, alice["headers"])
    poll(client, job_id, alice["headers"])
    lifecycle.record_epoch(sessions(settings.database_url), job_id, 1, {"loss": 0.5}, 0.1)
    r, statements = poll(client, job_id, alice["headers"])
    assert statements == [] and r.json["history"] == []  # within the second: as it was
    time.sleep(1.0)
    r, statements = poll(client, job_id, alice["headers"])
    assert [h["epoch"] for h in r.json["history"]] == [1] and statements


def test_repeated_predicts_skip_the_database_and_still_check_the_token(
    client: FlaskClient, app: Flask, settings: Settings, alice: dict[str, Any],
    bob: dict[str, Any],
) -> None:  # fmt: skip
    from worker.training import run_job  # trains for real, in this process

    app.extensions["trainq"]["model_refs"].reuse_seconds = 0.0
    spec = quickstart(epochs=1)
    spec["model"]["layers"][1]["config"]["units"] = 16
    job_id = client.post("/api/v1/jobs", json=spec, headers=alice["headers"]).json["id"]
    run_job(settings, job_id)
    url, body = (
        f"/api/v1/jobs/{job_id}/predict",
        {"instances": [[[0] * 28] * 28, [[255] * 28] * 28]},
    )

    def predict(headers: dict[str, str], json: Any = body) -> tuple[Any, list[str]]:
        with counted() as statements:
            r = client.post(url, json=json, headers=headers)
        return r, statements

    first, statements = predict(alice["headers"])
    assert first.status_code == 200 and statements
    again, statements = predict(alice["headers"])
    assert statements == [] and again.json == first.json  # the same model, from memory
    assert len(again.json["predictions"]) == 2
    assert predict(bob["headers"])[0].status_code == 404  # kept per token
    bad, statements = predict(alice["headers"], {"instances": []})
    assert bad.status_code == 422 and statements == []  # the body is still checked

    with session_scope(settings.database_url) as s:
        revoke_token(s, alice["token"])
    r, statements = predict(alice["headers"])
    assert r.status_code == 401 and statements
    assert predict({"Authorization": "Bearer nope"}, {})[0].status_code == 401  # before 400
