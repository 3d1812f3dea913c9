"""Webhooks on the shared live service: a receiver that is down for the first attempts gets
every state change of a trained job once by id, signed, after it comes up."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import select

from shared.db import session_scope
from shared.models import Event
from tests.conftest import make_user
from tests.live import Live, LiveStacks
from tests.specs import quickstart
from tests.support import wait_until
from tests.webhook_receiver import Receiver
from trainq.cli import main

pytestmark = pytest.mark.slow
# Short waits between attempts, so that the retries after the receiver comes up are soon.
QUICK = {"TRAINQ_WEBHOOKS_BACKOFF_SECONDS": "0.25", "TRAINQ_WEBHOOKS_POLL_SECONDS": "0.25",
         "TRAINQ_WEBHOOKS_TIMEOUT_SECONDS": "2", "TRAINQ_RECONCILE_SECONDS": "86400"}  # fmt: skip


@pytest.fixture(scope="module")
def live(live_stacks: LiveStacks) -> Iterator[Live]:
    """The shared service, with the webhooks' worker for this module (stopped after it)."""
    live = live_stacks.get("sqlite")
    live.service.start_webhooks(**QUICK)
    try:
        yield live
    finally:
        proc = live.service.procs.pop("webhooks")
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def _deliveries(live: Live, user: dict[str, str], hook: dict[str, Any]) -> list[Any]:
    r = requests.get(f"{live.url}/api/v1/webhooks/{hook['id']}/deliveries", headers=user)
    assert r.status_code == 200, r.text
    return r.json()["deliveries"]


def test_a_receiver_down_at_first_gets_each_state_change_once_by_id_signed(live: Live) -> None:
    # A user of this test's own: only this job's events go to this receiver.
    _, token = make_user(live.db_url, "webhook-owner")
    user = {"Authorization": f"Bearer {token}"}
    # Down (nothing listens on its port), then up answering 503 Retry-After: 1 once.
    receiver = Receiver(answer=lambda n: (503, {"Retry-After": "1"}) if n == 0 else (200, {}))
    r = requests.post(f"{live.url}/api/v1/webhooks", json={"url": receiver.url}, headers=user)
    assert r.status_code == 201, r.text
    hook = r.json()
    job_id = live.submit(quickstart(epochs=1), headers=user)["id"]
    wait_until(lambda: live.get(job_id, user)["status"] == "succeeded", 180, "the job to end")
    wait_until(lambda: (d := _deliveries(live, user, hook)) and len(d) == 3
               and all(x["attempts"] >= 1 and x["status"] == "pending" for x in d),
               30, "an attempt at each event, to a receiver that is down")  # fmt: skip
    failed_first = _deliveries(live, user, hook)
    assert all("ConnectionError" in d["error"] for d in failed_first), failed_first
    receiver.start()
    try:
        wait_until(lambda: all(d["status"] == "succeeded" for d in _deliveries(live, user, hook)),
                   60, "every delivery to succeed")  # fmt: skip
    finally:
        receiver.stop()
    events = receiver.events(hook["secret"])  # each verified with standardwebhooks
    with session_scope(live.db_url) as s:
        changes = [e.data["status"] for e in s.scalars(
            select(Event).where(Event.job_id == job_id, Event.type == "status").order_by(Event.seq)
        )]  # fmt: skip
    got = sorted(events.values(), key=lambda e: e["data"]["seq"])
    assert [e["data"]["status"] for e in got] == changes == ["queued", "running", "succeeded"]
    assert [e["type"] for e in got] == ["job.queued", "job.running", "job.succeeded"]
    assert {e["data"]["job_id"] for e in got} == {job_id}
    assert len(receiver.received) >= len(events) + 1  # the 503 was sent again, same id
    assert {d["message_id"] for d in _deliveries(live, user, hook)} == set(events)


def test_the_cli_adds_lists_pings_and_shows_the_delivery_log(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    _, token = make_user(live.db_url, "webhook-cli")
    common = ["--url", live.url, "--token", token]
    receiver = Receiver().start()
    try:
        assert main(["webhooks", "add", receiver.url, "--event", "job.succeeded", *common]) == 0
        hook_id, secret_line = capsys.readouterr().out.splitlines()
        secret = secret_line.rsplit(" ", 1)[1]
        assert main(["webhooks", "list", *common]) == 0
        listed = capsys.readouterr().out
        assert hook_id in listed and "job.succeeded" in listed and secret not in listed
        assert main(["webhooks", "ping", hook_id, *common]) == 0
        assert "ping queued" in capsys.readouterr().out
        wait_until(lambda: receiver.received, 20, "the ping")
        (ping,) = receiver.events(secret).values()
        assert ping["type"] == "webhook.ping" and ping["data"] == {"webhook_id": hook_id}
        wait_until(lambda: main(["webhooks", "deliveries", hook_id, *common]) == 0
                   and "succeeded" in capsys.readouterr().out, 10, "the log to say so")  # fmt: skip
        assert main(["webhooks", "add", "ftp://example.com/", *common]) == 2
        assert "http:// or https://" in capsys.readouterr().err
    finally:
        receiver.stop()
