"""Open event streams never take every API thread: polls still answer, extra streams wait their
turn (503 with Retry-After) and the SDK's follow gets its events once one closes. Real gunicorn."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.db import sessions
from shared.jobs import lifecycle
from tests.live import api_alone
from tests.specs import quickstart
from tests.support import Service, wait_until
from trainq.client import Client

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


@pytest.fixture
def api(tmp_path: Path, redis_url: str) -> Iterator[tuple[Service, str]]:
    # One user may hold every stream here: this is about the process's total (each user's
    # share of it: tests/web/test_hardening.py).
    env = {"TRAINQ_WEB_STREAMS_PER_USER": "2"}
    with api_alone(tmp_path, redis_url, 5, "sam", env, workers=1, threads=4) as started:
        yield started  # room for 4 - 2 streams


def test_streams_leave_threads_for_short_requests(api: tuple[Service, str]) -> None:
    service, token = api
    auth = {"Authorization": f"Bearer {token}"}
    job = requests.post(f"{service.url}/api/v1/jobs", json=quickstart(epochs=2), headers=auth,
                        timeout=30).json()  # fmt: skip
    events = f"{service.url}/api/v1/jobs/{job['id']}/events"
    held = [requests.get(events, headers=auth, stream=True, timeout=30) for _ in range(2)]
    try:
        assert all(r.status_code == 200 for r in held)  # both open: the job is still queued

        refused = requests.get(events, headers=auth, timeout=10)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "2"
        error = refused.json()["error"]
        assert error["code"] == "unavailable" and error["details"]["limit"] == 2
        assert "Last-Event-ID" in error["message"]

        # Short requests still find a thread at once, many in a row.
        for _ in range(20):
            status = requests.get(f"{service.url}/api/v1/jobs/{job['id']}", headers=auth,
                                  timeout=5)  # fmt: skip
            assert status.status_code == 200 and status.json()["status"] == "queued"

        # The SDK's follow waits for room, then reads the job from its first event.
        seen: list[dict[str, Any]] = []
        client = Client(service.url, token)
        follower = threading.Thread(target=lambda: seen.extend(client.follow(job["id"])))
        follower.start()
        time.sleep(1)
        assert not seen  # still refused: both streams are open
        held.pop().close()  # the server notices at its next write

        url = service.db_url
        assert lifecycle.start(sessions(url), job["id"], "test")
        lifecycle.fail(sessions(url), job["id"], "RuntimeError: stopped by the test")
        # The job has ended: the open streams send its last events and end, freeing their slots.
        follower.join(60)
        assert not follower.is_alive()
        assert [e["id"] for e in seen] == [1, 2, 3]
        assert seen[-1]["status"] == "failed"

        def replayed() -> requests.Response | None:  # once every slot is given back
            late = requests.get(events, headers=auth, timeout=10)
            return late if late.status_code == 200 else None

        assert wait_until(replayed, 5, "a free stream slot").text.count("\nevent: ") == 3
    finally:
        for r in held:
            r.close()
