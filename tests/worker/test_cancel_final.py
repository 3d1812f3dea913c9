"""A cancel is final: a job somebody asked to cancel is never put back in the queue; a job whose
worker was lost is tried again once, saying why."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from shared.db import session_scope, sessions
from shared.jobs import lifecycle
from shared.models import Event, Job, JobStatus, utcnow
from shared.settings import Settings
from tests.conftest import make_user
from web.queue import JobQueue
from worker.periodic import reconcile_once


@pytest.fixture
def csettings(tmp_path: Path, sqlite_url: str, redis_url: str) -> Settings:
    broker = redis_url.rsplit("/", 1)[0] + "/4"
    redis.Redis.from_url(broker).flushdb()
    return Settings(var_dir=tmp_path, database_url=sqlite_url, redis_url=broker)


def _running(settings: Settings, **values: object) -> str:
    owner, _ = make_user(settings.database_url, "erin")
    with session_scope(settings.database_url) as s:
        job = Job(owner_id=owner, name="j", spec={}, epochs_total=5, status=JobStatus.queued)
        s.add(job)
        s.flush()
        job_id = job.id
    assert lifecycle.start(sessions(settings.database_url), job_id, "w1:1")
    with session_scope(settings.database_url) as s:
        for key, value in values.items():
            setattr(s.get(Job, job_id), key, value)
    return job_id


def _statuses(settings: Settings, job_id: str) -> list[dict[str, object]]:
    with session_scope(settings.database_url) as s:
        rows = s.scalars(select(Event).where(Event.job_id == job_id).order_by(Event.seq))
        return [r.data for r in rows if r.type == "status"]


def test_a_cancelled_job_whose_worker_went_silent_is_never_requeued(csettings: Settings) -> None:
    long_ago = utcnow() - timedelta(minutes=10)
    job_id = _running(csettings, heartbeat_at=long_ago)
    with session_scope(csettings.database_url) as s:  # asked to cancel while its step was built
        assert lifecycle.request_cancel(s, job_id) == JobStatus.running
        s.get(Job, job_id).heartbeat_at = long_ago  # type: ignore[union-attr]
    queue = JobQueue(csettings)
    for _ in range(3):  # round after round
        assert reconcile_once(csettings, queue.send)["requeued"] == []
    db = sessions(csettings.database_url)
    assert not lifecycle.start(db, job_id, "w2:2", stale_after=timedelta(0))  # a late message
    with session_scope(csettings.database_url) as s:
        job = s.get(Job, job_id)
        assert job is not None
        assert job.status == JobStatus.cancelled and job.finished_at is not None
    assert [e["status"] for e in _statuses(csettings, job_id)] == ["running", "cancelled"]


def test_a_redelivered_job_with_a_cancel_request_is_not_taken_again(csettings: Settings) -> None:
    job_id = _running(csettings)
    with session_scope(csettings.database_url) as s:
        lifecycle.request_cancel(s, job_id)
    db = sessions(csettings.database_url)
    # Its worker is lost; the broker delivers the job again to another worker.
    assert not lifecycle.start(db, job_id, "w2:2", stale_after=timedelta(0))
    with session_scope(csettings.database_url) as s:
        assert s.get(Job, job_id).status == JobStatus.cancelled  # type: ignore[union-attr]


def test_a_job_asked_to_cancel_is_not_handed_back_at_shutdown(csettings: Settings) -> None:
    job_id = _running(csettings)
    db = sessions(csettings.database_url)
    with session_scope(csettings.database_url) as s:
        lifecycle.request_cancel(s, job_id)
    assert not lifecycle.hand_back(db, job_id, "w1:1")
    lifecycle.cancelled(db, job_id, {})
    with session_scope(csettings.database_url) as s:
        job = s.get(Job, job_id)
        assert job is not None and job.status == JobStatus.cancelled and job.sent_at is None


def test_a_lost_worker_is_retried_once_saying_why_then_the_job_fails(csettings: Settings) -> None:
    job_id = _running(csettings)
    db = sessions(csettings.database_url)
    assert csettings.max_attempts == 2
    # The first worker process is killed (out of memory, say): its job is taken again once.
    assert lifecycle.start(db, job_id, "w2:2", stale_after=timedelta(0), max_attempts=2)
    retry = _statuses(csettings, job_id)[-1]
    assert retry["status"] == "running" and retry["attempt"] == 2
    assert "attempt 1 of 2" in str(retry["reason"]) and "out of memory" in str(retry["reason"])
    # Lost again: no blind third try.
    assert not lifecycle.start(db, job_id, "w3:3", stale_after=timedelta(0), max_attempts=2)
    with session_scope(csettings.database_url) as s:
        job = s.get(Job, job_id)
        assert job is not None and job.status == JobStatus.failed
        assert job.error is not None and job.error.startswith("gave up after 2 attempts")
