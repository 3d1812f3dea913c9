"""Webhooks through the in-process API, sent by the delivery rounds to a real HTTP receiver:
registration and its refusals, the delivery log, ping, redeliver, retries honouring
Retry-After, redirects not followed, a timeout per attempt, and failed after the window."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.db import sessions
from shared.settings import Settings
from shared.webhooks import delivery
from tests.webhook_receiver import Receiver, queued_job

API = "/api/v1/webhooks"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The in-process app's settings, with loopback receivers allowed and short waits."""
    return settings.model_copy(update={
        "webhooks_allow_private": True, "webhooks_backoff_seconds": 0.2,
        "webhooks_timeout_seconds": 0.5, "webhooks_retry_seconds": 2,
    })  # fmt: skip


@pytest.fixture
def receiver() -> Any:
    r = Receiver().start()
    yield r
    r.stop()


def _register(client: FlaskClient, alice: dict[str, Any], url: str, **body: Any) -> dict[str, Any]:
    r = client.post(API, json={"url": url, **body}, headers=alice["headers"])
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def _rounds(settings: Settings, until: Any, timeout: float = 10) -> None:
    """Run delivery rounds, as the periodic jobs do, until ``until()`` holds."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "the deliveries did not end in time"
        delivery.deliver_due(sessions(settings.database_url), settings)
        time.sleep(0.05)


def _log(client: FlaskClient, alice: dict[str, Any], hook: dict[str, Any]) -> list[Any]:
    r = client.get(f"{API}/{hook['id']}/deliveries", headers=alice["headers"])
    assert r.status_code == 200
    return r.get_json()["deliveries"]


def test_registration_refuses_what_is_not_an_http_url_and_shows_the_secret_once(
    client: FlaskClient, alice: dict[str, Any], settings: Settings
) -> None:
    bodies = [{"url": "ftp://example.com/x"}, {"url": "mailto:a@b.c"}, {"url": ""},
              {"url": "http://x/", "events": ["job.exploded"]},
              {"url": "http://x", "y": 1}]  # fmt: skip
    for bad in bodies:
        r = client.post(API, json=bad, headers=alice["headers"])
        assert r.status_code == 422, (bad, r.get_json())
        assert r.get_json()["error"]["code"] == "invalid_input"
    hook = _register(client, alice, "http://127.0.0.1:9/h", events=["job.*"], description="ci")
    assert hook["secret"].startswith("whsec_") and hook["events"] == ["job.*"]
    listed = client.get(API, headers=alice["headers"]).get_json()["webhooks"]
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    assert "secret" not in client.get(f"{API}/{hook['id']}", headers=alice["headers"]).get_json()
    assert client.delete(f"{API}/{hook['id']}", headers=alice["headers"]).status_code == 204
    assert client.get(f"{API}/{hook['id']}", headers=alice["headers"]).status_code == 404


def test_a_private_target_is_refused_at_registration_and_at_delivery_without_the_setting(
    client: FlaskClient, alice: dict[str, Any], settings: Settings, receiver: Receiver
) -> None:
    hook = _register(client, alice, receiver.url)
    settings.webhooks_allow_private = False  # the app's settings object, and the rounds'
    r = client.post(API, json={"url": "http://127.0.0.1:8080/"}, headers=alice["headers"])
    assert r.status_code == 422 and "private" in r.get_json()["error"]["message"]
    assert client.post(f"{API}/{hook['id']}/ping", headers=alice["headers"]).status_code == 202
    delivery.deliver_due(sessions(settings.database_url), settings)
    (ping,) = _log(client, alice, hook)
    assert ping["status"] == "pending" and ping["error"].startswith("refused: ")
    assert receiver.received == []


def test_job_events_retried_after_503_with_retry_after_arrive_signed_and_redeliver_repeats_the_id(
    client: FlaskClient, alice: dict[str, Any], settings: Settings
) -> None:
    receiver = Receiver(answer=lambda n: (503, {"Retry-After": "1"}) if n == 0 else (200, {}))
    hook = _register(client, alice, receiver.url, events=["job.queued", "job.cancelled"])
    job_id = queued_job(settings.database_url, alice["id"])
    assert client.post(f"/api/v1/jobs/{job_id}/cancel", headers=alice["headers"]).status_code == 200
    _rounds(settings, lambda: all(d["status"] == "pending" and d["attempts"] == 1
                                  for d in _log(client, alice, hook)))  # fmt: skip
    receiver.start()  # down for the first attempts (connection refused), up from now on
    started = time.monotonic()
    _rounds(settings, lambda: all(d["status"] == "succeeded" for d in _log(client, alice, hook)))
    assert time.monotonic() - started >= 0.9  # the 503's Retry-After: 1 was waited for
    try:
        events = receiver.events(hook["secret"])
        assert sorted(e["type"] for e in events.values()) == ["job.cancelled", "job.queued"]
        assert {e["data"]["job_id"] for e in events.values()} == {job_id}
        log = _log(client, alice, hook)
        assert {d["message_id"] for d in log} == set(events)
        first = log[0]
        r = client.post(f"{API}/{hook['id']}/deliveries/{first['id']}/redeliver",
                        headers=alice["headers"])  # fmt: skip
        assert r.status_code == 202 and r.get_json()["message_id"] == first["message_id"]
        _rounds(
            settings, lambda: all(d["status"] == "succeeded" for d in _log(client, alice, hook))
        )
        assert receiver.received[-1].headers["webhook-id"] == first["message_id"]
        assert set(receiver.events(hook["secret"])) == set(events)  # the same ids, once each
    finally:
        receiver.stop()


def test_a_redirect_a_slow_receiver_and_a_500_forever_end_failed_after_the_window(
    client: FlaskClient, alice: dict[str, Any], settings: Settings
) -> None:
    hooks = {}
    receivers = {
        "redirect": Receiver(answer=lambda n: (302, {"Location": "http://127.0.0.1:1/"})),
        "slow": Receiver(delay=1.5),
        "500": Receiver(answer=lambda n: (500, {})),
    }
    for name, receiver in receivers.items():
        receiver.start()
        hooks[name] = _register(client, alice, receiver.url)
        assert client.post(f"{API}/{hooks[name]['id']}/ping",
                           headers=alice["headers"]).status_code == 202  # fmt: skip
    started = time.monotonic()
    try:
        _rounds(settings, lambda: all(_log(client, alice, h)[0]["status"] == "failed"
                                      for h in hooks.values()), timeout=20)  # fmt: skip
    finally:
        for receiver in receivers.values():
            receiver.stop()
    assert time.monotonic() - started < 8  # the window is 2 s; each attempt at most 0.5 s
    errors = {name: _log(client, alice, h)[0] for name, h in hooks.items()}
    assert (
        "redirect" in errors["redirect"]["error"] and errors["redirect"]["response_status"] == 302
    )
    assert errors["slow"]["error"] == "no answer in 0.5 s"
    assert errors["500"]["response_status"] == 500 and errors["500"]["attempts"] >= 2
    assert len(receivers["redirect"].received) >= 1  # sent there, never to where it pointed
