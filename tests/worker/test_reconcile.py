"""The periodic reconciler puts back what the broker or a dead worker lost, and only that."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from shared.db import session_scope, sessions
from shared.jobs import lifecycle
from shared.jobs.dispatch import dispatch
from shared.models import Event, Job, JobStatus, utcnow
from shared.settings import Settings
from tests.conftest import make_user
from tests.specs import quickstart
from tests.support import free_port
from web import create_app
from web.queue import JobQueue
from worker.periodic import reconcile_once


@pytest.fixture
def rsettings(tmp_path: Path, sqlite_url: str, redis_url: str) -> Settings:
    broker = redis_url.rsplit("/", 1)[0] + "/3"
    redis.Redis.from_url(broker).flushdb()
    # No worker runs here to announce its slots: a fixed total of one.
    return Settings(var_dir=tmp_path, database_url=sqlite_url, redis_url=broker, worker_slots=1)


def _held(settings: Settings) -> list[str]:
    client = redis.Redis.from_url(settings.redis_url)
    return [json.loads(m)["headers"]["id"] for m in client.lrange("celery", 0, -1)]


def _job(settings: Settings, owner: int, **values: object) -> str:
    with session_scope(settings.database_url) as s:
        job = Job(owner_id=owner, name="j", spec={}, epochs_total=1, **values)
        s.add(job)
        s.flush()
        return job.id


def test_lost_queued_job_is_resent_once(rsettings: Settings) -> None:
    owner, _ = make_user(rsettings.database_url, "carol")
    old = utcnow() - timedelta(minutes=5)
    lost = _job(rsettings, owner, created_at=old, sent_at=old)  # sent, but the broker lost it
    held = _job(rsettings, owner, created_at=old)
    fresh = _job(rsettings, owner, sent_at=utcnow())  # its message may still be on its way
    waiting = _job(rsettings, owner, created_at=old)  # never sent: the dispatcher's to hand out
    queue = JobQueue(rsettings)
    assert queue.send(held)
    with session_scope(rsettings.database_url) as s:
        s.get(Job, held).sent_at = old  # type: ignore[union-attr]

    result = reconcile_once(rsettings, queue.send)
    assert result["resent"] == [lost]
    assert sorted(_held(rsettings)) == sorted([held, lost])
    assert fresh not in _held(rsettings) and waiting not in _held(rsettings)
    # The next round finds everything in the broker and sends nothing twice.
    assert reconcile_once(rsettings, queue.send)["resent"] == []
    assert len(_held(rsettings)) == 2


def test_silent_running_job_is_requeued(rsettings: Settings) -> None:
    owner, _ = make_user(rsettings.database_url, "dave")
    long_ago = utcnow() - timedelta(minutes=10)
    dead = _job(rsettings, owner, status=JobStatus.running, heartbeat_at=long_ago)
    alive = _job(rsettings, owner, status=JobStatus.running, heartbeat_at=utcnow())
    result = reconcile_once(rsettings, JobQueue(rsettings).send)
    assert result["requeued"] == [dead]
    with session_scope(rsettings.database_url) as s:
        assert s.get(Job, dead).status == JobStatus.queued  # type: ignore[union-attr]
        assert s.get(Job, dead).sent_at is None  # type: ignore[union-attr]
        assert s.get(Job, alive).status == JobStatus.running  # type: ignore[union-attr]
    # Back in the queue, it waits for a free slot like any other job: the live one holds one.
    wide = rsettings.model_copy(update={"worker_slots": 2})
    assert dispatch(sessions(rsettings.database_url), rsettings, JobQueue(rsettings).publish) == []
    assert dispatch(sessions(wide.database_url), wide, JobQueue(wide).publish) == [dead]
    assert _held(rsettings) == [dead]


def test_a_duplicate_delivery_does_not_start_the_job_twice(rsettings: Settings) -> None:
    owner, _ = make_user(rsettings.database_url, "erin")
    job_id = _job(rsettings, owner)
    assert lifecycle.start(sessions(rsettings.database_url), job_id, "w1:1")
    assert not lifecycle.start(sessions(rsettings.database_url), job_id, "w2:2")
    with session_scope(rsettings.database_url) as s:
        job = s.get(Job, job_id)
        assert job is not None and (job.worker, job.attempt) == ("w1:1", 1)


def test_a_worker_that_lost_its_job_does_not_record_a_result(rsettings: Settings) -> None:
    """Worker 1 went silent, worker 2 took the job over; worker 1 finishing later records
    nothing, and the job ends once, with worker 2's model."""
    url = rsettings.database_url
    owner, _ = make_user(url, "gina")
    job_id = _job(rsettings, owner)
    assert lifecycle.start(sessions(url), job_id, "w1:1")
    assert lifecycle.start(
        sessions(url), job_id, "w2:2", stale_after=timedelta(0)
    )  # w1 silent: taken over
    late = {"keras": ("late.keras", 1, "aa")}
    assert not lifecycle.succeed(sessions(url), job_id, {"accuracy": 0.1}, late, worker="w1:1")
    with session_scope(url) as s:
        job = s.get(Job, job_id)
        assert job is not None and job.status == JobStatus.running and not job.artifacts
    ours = {"keras": ("ours.keras", 2, "bb")}
    assert lifecycle.succeed(sessions(url), job_id, {"accuracy": 0.9}, ours, worker="w2:2")
    assert not lifecycle.succeed(sessions(url), job_id, {"accuracy": 0.1}, late)  # it has ended
    with session_scope(url) as s:
        job = s.get(Job, job_id)
        assert job is not None and job.status == JobStatus.succeeded
        assert job.test_metrics == {"accuracy": 0.9}
        assert [a.path for a in job.artifacts] == ["ours.keras"]
        events = s.scalars(select(Event.data).where(Event.job_id == job_id, Event.type == "status"))
        assert [e["status"] for e in events].count("succeeded") == 1


def test_submit_while_the_broker_is_down_keeps_the_job(
    tmp_path: Path, sqlite_url: str, redis_url: str
) -> None:
    down = Settings(
        var_dir=tmp_path, database_url=sqlite_url, redis_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    _, token = make_user(sqlite_url, "frank")
    response = (
        create_app(down)
        .test_client()
        .post("/api/v1/jobs", json=quickstart(), headers={"Authorization": f"Bearer {token}"})
    )
    assert response.status_code == 202
    job_id = response.get_json()["id"]
    with session_scope(sqlite_url) as s:
        job = s.get(Job, job_id)
        assert job is not None and job.status == JobStatus.queued and job.sent_at is None
    # Once the broker is back, the dispatcher sends it.
    up = Settings(
        var_dir=tmp_path, database_url=sqlite_url, redis_url=redis_url.rsplit("/", 1)[0] + "/4",
        worker_slots=1,
    )  # fmt: skip
    redis.Redis.from_url(up.redis_url).flushdb()
    assert dispatch(sessions(up.database_url), up, JobQueue(up).publish) == [job_id]
    assert _held(up) == [job_id]
