"""Limits on submissions: queued jobs per user, submissions per window; 429, Retry-After, no job."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select, update

from shared.commands.database import migrate
from shared.db import session_scope
from shared.models import Job, JobStatus
from shared.settings import Settings
from tests.conftest import make_user
from tests.specs import quickstart
from tests.support import Service, postgres_database
from tests.web.test_api import assert_error, broker_message_ids, submit, total_jobs
from web import create_app

User = dict[str, Any]


def _client(settings: Settings, **limits: Any) -> Any:
    return create_app(settings.model_copy(update=limits)).test_client()


def _jobs_in_db(url: str) -> int:
    with session_scope(url) as s:
        return s.scalar(select(func.count()).select_from(Job)) or 0


def test_over_rate_is_refused_with_retry_after_and_nothing_recorded(
    settings: Settings, alice: User, bob: User
) -> None:
    client = _client(settings, submit_rate=3, submit_rate_window_seconds=60)
    accepted = [submit(client, alice).get_json()["id"] for _ in range(3)]
    refused = submit(client, alice)
    error = assert_error(refused, 429, "rate_limited")
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert error["details"] == {"limit": 3, "window_seconds": 60, "retry_after": retry_after}
    assert "at most 3 submissions per 60 s" in error["message"]
    assert total_jobs(client, alice) == 3
    assert _jobs_in_db(settings.database_url) == 3
    # The first took the free worker slot; the others wait their turn in the database.
    assert accepted[0] in broker_message_ids(settings.redis_url)
    # The limit is each user's own.
    assert submit(client, bob).status_code == 202


def test_retry_after_is_the_truth(settings: Settings, alice: User) -> None:
    client = _client(settings, submit_rate=2, submit_rate_window_seconds=2)
    assert [submit(client, alice).status_code for _ in range(2)] == [202, 202]
    refused = submit(client, alice)
    assert_error(refused, 429, "rate_limited")
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 2
    time.sleep(retry_after + 0.05)
    assert submit(client, alice).status_code == 202
    assert total_jobs(client, alice) == 3


def test_over_queued_quota_is_refused_until_a_job_starts(
    settings: Settings, alice: User, bob: User
) -> None:
    client = _client(settings, max_queued_jobs=2)
    first, _second = (submit(client, alice).get_json()["id"] for _ in range(2))
    refused = submit(client, alice)
    error = assert_error(refused, 429, "quota_exceeded")
    assert refused.headers["Retry-After"] == str(error["details"]["retry_after"])
    assert error["details"]["limit"] == 2 and error["details"]["queued"] == 2
    assert total_jobs(client, alice) == 2
    me = client.get("/api/v1/me", headers=alice["headers"]).get_json()
    assert me["limits"]["queued_jobs"] == 2 and me["limits"]["max_queued_jobs"] == 2
    assert submit(client, bob).status_code == 202  # bob's queue is his own

    with session_scope(settings.database_url) as s:  # a worker takes alice's first job
        s.execute(update(Job).where(Job.id == first).values(status=JobStatus.running))
    assert submit(client, alice).status_code == 202
    assert total_jobs(client, alice) == 3


def test_size_limits_are_422_and_spend_no_rate(settings: Settings, alice: User) -> None:
    client = _client(settings, submit_rate=1, max_epochs=2, max_job_seconds=600)
    assert_error(submit(client, alice, quickstart(epochs=3)), 422, "invalid_spec")
    too_long = assert_error(
        submit(client, alice, quickstart(epochs=2) | {"time_limit_seconds": 601}),
        422,
        "invalid_spec",
    )
    assert too_long["details"] == {"field": "time_limit_seconds"}
    assert "at most 600" in too_long["message"]
    assert total_jobs(client, alice) == 0
    limits = client.get("/api/v1/me", headers=alice["headers"]).get_json()["limits"]
    assert limits["max_job_seconds"] == 600 and limits["max_epochs"] == 2
    assert (
        submit(client, alice, quickstart(epochs=2) | {"time_limit_seconds": 600}).status_code == 202
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url
    else:
        with postgres_database() as url:
            migrate(url)
            yield url


def test_concurrent_submissions_never_pass_the_quota(
    settings: Settings, any_db: str, tmp_path: Path
) -> None:
    """Eight submissions at once against a quota of three: three recorded, five refused."""
    _, token = make_user(any_db, "dora")
    headers = {"Authorization": f"Bearer {token}"}
    app = create_app(settings.model_copy(update={"database_url": any_db, "max_queued_jobs": 3}))
    start = threading.Barrier(8)
    statuses: list[int] = []

    def one() -> None:
        client = app.test_client()
        start.wait()
        response = client.post("/api/v1/jobs", json=quickstart(epochs=1), headers=headers)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert Counter(statuses) == {202: 3, 429: 5}
    assert _jobs_in_db(any_db) == 3


@pytest.mark.slow  # two gunicorn processes
def test_rate_limit_holds_across_web_processes(
    sqlite_url: str, redis_url: str, tmp_path: Path
) -> None:
    """Two API processes on the same database and Redis share each user's submission count."""
    _, token = make_user(sqlite_url, "erin")
    headers = {"Authorization": f"Bearer {token}"}
    services = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            service = Service(sqlite_url, redis_url, tmp_path / name)
            service.env["TRAINQ_SUBMIT_RATE"] = "4"
            service.start_web()
            services.append(service)
        statuses = [
            requests.post(
                f"{services[i % 2].url}/api/v1/jobs",
                json=quickstart(epochs=1),
                headers=headers,
                timeout=30,
            ).status_code
            for i in range(6)
        ]
    finally:
        for service in services:
            service.stop()
    assert statuses == [202, 202, 202, 202, 429, 429]
    assert _jobs_in_db(sqlite_url) == 4
