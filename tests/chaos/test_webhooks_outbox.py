"""The outbox outlives the web process: gunicorn killed right after a job's state change
commits, its webhook events are still sent, by the webhooks' worker started only afterwards."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import requests

from shared.commands.database import migrate
from tests.conftest import make_user
from tests.support import Service, wait_until
from tests.webhook_receiver import Receiver, queued_job

pytestmark = pytest.mark.slow


def test_killing_the_web_process_after_a_commit_still_delivers_the_event(
    tmp_path: Path, redis_url: str
) -> None:
    db_url = f"sqlite:///{tmp_path / 'trainq.db'}"
    migrate(db_url)
    service = Service(db_url, redis_url.rsplit("/", 1)[0] + "/13", tmp_path,
                      TRAINQ_WEBHOOKS_ALLOW_PRIVATE="true")  # fmt: skip
    receiver = Receiver().start()
    try:
        service.start_web()  # no training worker: the job stays queued until it is cancelled
        owner_id, token = make_user(db_url, "kim")
        user = {"Authorization": f"Bearer {token}"}
        r = requests.post(f"{service.url}/api/v1/webhooks", json={"url": receiver.url},
                          headers=user)  # fmt: skip
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        job_id = queued_job(db_url, owner_id)
        cancelled = requests.post(f"{service.url}/api/v1/jobs/{job_id}/cancel", headers=user)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        service.procs["web"].send_signal(signal.SIGKILL)  # the moment after the commit
        service.procs["web"].wait(10)
        assert receiver.received == []  # nothing was sent by the web process
        service.start_webhooks(TRAINQ_WEBHOOKS_POLL_SECONDS="0.25")
        wait_until(lambda: len(receiver.events(secret)) == 2, 30, "both events to arrive")
    finally:
        service.stop()
        receiver.stop()
    events = sorted(receiver.events(secret).values(), key=lambda e: e["data"]["seq"])
    assert [(e["type"], e["data"]["job_id"]) for e in events] == [
        ("job.queued", job_id), ("job.cancelled", job_id),
    ]  # fmt: skip
