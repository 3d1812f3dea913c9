"""After an outage of the database: the reconciler leaves live workers time to beat their hearts,
and an epoch tried again after a lost answer is recorded once."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from shared.db import session_scope, sessions
from shared.jobs import lifecycle
from shared.models import EpochRecord, Event, Job, JobStatus, utcnow
from shared.settings import Settings
from tests.conftest import make_user
from web.queue import JobQueue
from worker import periodic
from worker.periodic import OUTAGE_KEY, note_outage, reconcile_once


@pytest.fixture
def osettings(tmp_path: Path, sqlite_url: str, redis_url: str) -> Settings:
    broker = redis_url.rsplit("/", 1)[0] + "/4"
    redis.Redis.from_url(broker).flushdb()
    return Settings(
        var_dir=tmp_path, database_url=sqlite_url, redis_url=broker, stale_seconds=30
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _no_outage_seen() -> None:
    periodic._last_outage.clear()


def _running(settings: Settings, heartbeat_ago: float) -> str:
    owner, _ = make_user(settings.database_url, f"u{time.monotonic_ns()}")
    with session_scope(settings.database_url) as s:
        beat = utcnow() - timedelta(seconds=heartbeat_ago)
        job = Job(owner_id=owner, name="j", spec={}, epochs_total=3, status=JobStatus.running,
                  worker="host:1", heartbeat_at=beat)  # fmt: skip
        s.add(job)
        s.flush()
        return job.id


def _status(settings: Settings, job_id: str) -> JobStatus:
    with session_scope(settings.database_url) as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job.status


def test_no_job_is_requeued_until_its_worker_had_stale_seconds_of_a_database(
    osettings: Settings,
) -> None:
    client = redis.Redis.from_url(osettings.redis_url)
    job_id = _running(osettings, heartbeat_ago=60)  # silent for longer than stale_seconds
    note_outage(client)  # ... because the database was away until a moment ago
    send = JobQueue(osettings).send
    assert reconcile_once(osettings, send, client)["requeued"] == []
    assert _status(osettings, job_id) == JobStatus.running

    # Another periodic process (or this one restarted) knows of the outage from Redis.
    periodic._last_outage.clear()
    assert reconcile_once(osettings, send, client)["requeued"] == []

    # Its worker beats as soon as the database is back: it is never requeued.
    assert lifecycle.heartbeat(sessions(osettings.database_url), job_id, "host:1")[0]
    # A worker that stays silent for stale_seconds of a reachable database is requeued.
    dead = _running(osettings, heartbeat_ago=60)
    periodic._last_outage.clear()
    client.set(OUTAGE_KEY, repr(time.time() - 31))
    assert reconcile_once(osettings, send, client)["requeued"] == [dead]
    assert _status(osettings, job_id) == JobStatus.running


def test_without_an_outage_a_silent_worker_is_requeued_as_before(osettings: Settings) -> None:
    client = redis.Redis.from_url(osettings.redis_url)
    dead = _running(osettings, heartbeat_ago=60)
    alive = _running(osettings, heartbeat_ago=1)
    assert reconcile_once(osettings, JobQueue(osettings).send, client)["requeued"] == [dead]
    assert _status(osettings, alive) == JobStatus.running


def test_an_epoch_tried_again_after_a_lost_answer_is_recorded_once(osettings: Settings) -> None:
    db = sessions(osettings.database_url)
    job_id = _running(osettings, heartbeat_ago=0)
    for _ in range(2):  # the commit went through, its answer did not: the worker tries again
        lifecycle.record_epoch(db, job_id, 1, {"loss": 0.5}, 1.25)
    lifecycle.record_epoch(db, job_id, 2, {"loss": 0.4}, 1.5)
    with session_scope(osettings.database_url) as s:
        epochs = list(s.scalars(select(EpochRecord.epoch).where(EpochRecord.job_id == job_id)))
        events = list(s.scalars(select(Event.data).where(Event.job_id == job_id)))
    assert sorted(epochs) == [1, 2]
    assert [e["epoch"] for e in events if "epoch" in e] == [1, 2]


@pytest.mark.timeout(300)
def test_a_worker_gives_the_job_up_after_database_wait_seconds_and_it_resumes(
    osettings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import exc as sa_exc

    from tests.specs import quickstart
    from worker.training import run_job
    from worker.watch import checkpoint_dir

    settings = osettings.model_copy(
        update={"database_wait_seconds": 1.0, "redis_url": "redis://127.0.0.1:1/0"}
    )
    owner, _ = make_user(settings.database_url, "frank")
    with session_scope(settings.database_url) as s:
        job = Job(owner_id=owner, name="j", spec=quickstart(epochs=3, batch_size=64),
                  epochs_total=3, status=JobStatus.queued)  # fmt: skip
        s.add(job)
        s.flush()
        job_id = job.id
    record = lifecycle.record_epoch

    def away_after_epoch_1(db: object, job_id: str, epoch: int, *args: object) -> None:
        if epoch > 1:
            raise sa_exc.OperationalError("INSERT", {}, Exception("connection refused"))
        record(db, job_id, epoch, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(lifecycle, "record_epoch", away_after_epoch_1)
    run_job(settings, job_id)
    with session_scope(settings.database_url) as s:
        job = s.get(Job, job_id)
        assert job is not None
        # Given up, not failed: nothing could be written; its checkpoint holds epoch 2.
        assert (job.status, job.epochs_done, job.error) == (JobStatus.running, 1, None)
    assert (checkpoint_dir(settings, job_id) / "checkpoint.json").exists()

    monkeypatch.setattr(lifecycle, "record_epoch", record)  # the database is back
    db = sessions(settings.database_url)
    assert lifecycle.requeue(db, job_id, timedelta(0))  # its heartbeat went stale
    run_job(settings, job_id)
    with session_scope(settings.database_url) as s:
        job = s.get(Job, job_id)
        assert job is not None
        assert job.status == JobStatus.succeeded, job.error
        assert (job.attempt, job.first_epoch) == (2, 3)  # epoch 2 came from the checkpoint
        epochs = list(s.scalars(select(EpochRecord.epoch).where(EpochRecord.job_id == job_id)))
    assert sorted(epochs) == [1, 2, 3]
