"""Fair-share dispatch: users take turns, running limits hold, a queued job knows its place."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from shared.db import session_scope, sessions
from shared.jobs import dispatch
from shared.models import Job, JobStatus, utcnow
from shared.settings import Settings
from tests.conftest import make_user


@pytest.fixture
def dsettings(tmp_path: Path, sqlite_url: str, redis_url: str) -> Settings:
    broker = redis_url.rsplit("/", 1)[0] + "/5"
    redis.Redis.from_url(broker).flushdb()
    return Settings(
        var_dir=tmp_path, database_url=sqlite_url, redis_url=broker,
        worker_slots=1, max_running_per_user=2,
    )  # fmt: skip


class Cluster:
    """Workers that start what the dispatcher sends, in order, and finish when told."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sent: list[str] = []
        self.starts: list[tuple[str, int]] = []  # (job id, owner) in start order

    def publish(self, job_id: str) -> bool:
        self.sent.append(job_id)
        return True

    def dispatch(self) -> list[str]:
        """A dispatch round; every job sent starts at once."""
        sent = dispatch.dispatch(sessions(self.settings.database_url), self.settings, self.publish)
        with session_scope(self.settings.database_url) as s:
            for job_id in sent:
                job = s.get(Job, job_id)
                assert job is not None
                job.status, job.started_at = JobStatus.running, utcnow()
                self.starts.append((job_id, job.owner_id))
        return sent

    def finish_oldest(self) -> None:
        with session_scope(self.settings.database_url) as s:
            job = s.scalars(
                select(Job).where(Job.status == JobStatus.running).order_by(Job.started_at)
            ).first()
            assert job is not None
            job.status, job.finished_at = JobStatus.succeeded, utcnow()


def _queue(settings: Settings, owner: int, n: int, **values: object) -> list[str]:
    ids = []
    with session_scope(settings.database_url) as s:
        for _ in range(n):
            job = Job(owner_id=owner, name="j", spec={}, epochs_total=1, **values)
            s.add(job)
            s.flush()
            ids.append(job.id)
    return ids


def test_one_job_of_b_waits_for_at_most_one_of_a(dsettings: Settings) -> None:
    a, _ = make_user(dsettings.database_url, "a")
    b, _ = make_user(dsettings.database_url, "b")
    c, _ = make_user(dsettings.database_url, "c")
    cluster = Cluster(dsettings)
    _queue(dsettings, c, 1)
    assert len(cluster.dispatch()) == 1  # the one slot is now busy with c's job
    _queue(dsettings, a, 20)
    (b_job,) = _queue(dsettings, b, 1)
    assert cluster.dispatch() == []  # no free slot: everything waits in the database
    for _ in range(3):
        cluster.finish_oldest()
        cluster.dispatch()
    started = [job for job, _ in cluster.starts[1:]]
    assert b_job in started[:2], "b's job must be the next or the one after to start"


def test_three_users_take_turns_within_their_limits(dsettings: Settings) -> None:
    settings = dsettings.model_copy(update={"worker_slots": 2, "max_running_per_user": 1})
    users = [make_user(settings.database_url, n)[0] for n in ("u1", "u2", "u3")]
    for user in users:  # each queues all ten at once, one user after the other
        _queue(settings, user, 10)
    cluster = Cluster(settings)
    cluster.dispatch()
    while len(cluster.starts) < 30:
        cluster.finish_oldest()
        cluster.dispatch()
    owners = [owner for _, owner in cluster.starts]
    for i in range(len(owners)):
        started = {u: owners[: i + 1].count(u) for u in users}
        waiting = [u for u in users if started[u] < 10]
        assert max(started.values()) - min(started[u] for u in waiting or users) <= 1, owners
    # Never two running jobs of one user: from the recorded start and end times.
    with session_scope(settings.database_url) as s:
        jobs = s.scalars(select(Job)).all()
        for user in users:
            spans = sorted((j.started_at, j.finished_at) for j in jobs if j.owner_id == user)
            for (_, end), (start, _) in pairwise(spans):
                assert end is not None and start >= end


def test_within_a_user_higher_priority_first_then_oldest(dsettings: Settings) -> None:
    a, _ = make_user(dsettings.database_url, "a")
    low_old = _queue(dsettings, a, 1)[0]
    high = _queue(dsettings, a, 1, priority=5)[0]
    low_new = _queue(dsettings, a, 1)[0]
    cluster = Cluster(dsettings)
    for _ in range(3):
        cluster.dispatch()
        cluster.finish_oldest()
    assert [job for job, _ in cluster.starts] == [high, low_old, low_new]


def test_queue_position_counts_down_with_a_reason(dsettings: Settings) -> None:
    a, _ = make_user(dsettings.database_url, "a")
    b, _ = make_user(dsettings.database_url, "b")
    cluster = Cluster(dsettings)
    _queue(dsettings, a, 1)
    cluster.dispatch()  # a's first job takes the only slot
    a_jobs = _queue(dsettings, a, 2)
    b_job = _queue(dsettings, b, 1)[0]

    def info(job_id: str) -> dict[str, object]:
        with session_scope(dsettings.database_url) as s:
            job = s.get(Job, job_id)
            assert job is not None
            result = dispatch.queue_info(s, dsettings, job)
            assert result is not None
            return result

    # b has had no turn yet, so b's job starts before a's waiting ones.
    assert info(b_job) == {"position": 0, "reason": "all 1 worker slots are busy"}
    assert [info(j)["position"] for j in a_jobs] == [1, 2]
    cluster.finish_oldest()
    cluster.dispatch()  # b's job starts
    assert [info(j)["position"] for j in a_jobs] == [0, 1]
    assert info(a_jobs[1])["reason"] == "all 1 worker slots are busy"


def test_running_limit_is_the_reason_when_it_applies(dsettings: Settings) -> None:
    settings = dsettings.model_copy(update={"worker_slots": 3, "max_running_per_user": 1})
    a, _ = make_user(settings.database_url, "a")
    cluster = Cluster(settings)
    _queue(settings, a, 2)
    assert len(cluster.dispatch()) == 1  # a free slot is left, but a's limit is 1
    with session_scope(settings.database_url) as s:
        waiting = s.scalars(select(Job).where(Job.status == JobStatus.queued)).one()
        assert dispatch.queue_info(s, settings, waiting) == {
            "position": 0,
            "reason": "your limit of 1 running jobs is reached",
        }


def test_a_job_the_broker_refuses_stays_waiting(dsettings: Settings) -> None:
    a, _ = make_user(dsettings.database_url, "a")
    (job_id,) = _queue(dsettings, a, 1)
    assert dispatch.dispatch(sessions(dsettings.database_url), dsettings, lambda _id: False) == []
    with session_scope(dsettings.database_url) as s:
        assert s.get(Job, job_id).sent_at is None  # type: ignore[union-attr]
    # The next round, with the broker back, sends it.
    assert dispatch.dispatch(sessions(dsettings.database_url), dsettings, lambda _id: True) == [
        job_id
    ]
