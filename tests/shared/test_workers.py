"""Live capacity and GPU slots: the dispatcher hands out what the announced workers can take."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from shared import workers
from shared.db import session_scope, sessions
from shared.jobs import dispatch
from shared.models import Job, JobStatus, utcnow
from shared.settings import Settings
from tests.conftest import make_user
from tests.specs import quickstart
from web import create_app
from worker import presence


@pytest.fixture
def live(tmp_path: Path, sqlite_url: str, redis_url: str) -> Settings:
    """Settings that count the slots the workers announce (TRAINQ_WORKER_SLOTS=0)."""
    broker = redis_url.rsplit("/", 1)[0] + "/6"
    redis.Redis.from_url(broker).flushdb()
    return Settings(
        var_dir=tmp_path, database_url=sqlite_url, redis_url=broker, max_running_per_user=10
    )


class Broker:
    """Records where each job was published."""

    def __init__(self) -> None:
        self.sent: dict[str, str | None] = {}

    def __call__(self, job_id: str, queue: str | None = None) -> bool:
        self.sent[job_id] = queue
        return True


def _announce(settings: Settings, name: str, slots: int, gpus: int, ttl: float = 60) -> None:
    ids = [str(i) for i in range(gpus)]
    worker = workers.Worker(name, "host", slots, ids, workers.split_gpus(ids, slots))
    workers.announce(redis.Redis.from_url(settings.redis_url), worker, ttl)


def _queue(settings: Settings, owner: int, gpus: int = 0) -> str:
    with session_scope(settings.database_url) as s:
        job = Job(owner_id=owner, name="j", spec={"resources": {"gpus": gpus}}, epochs_total=1)
        s.add(job)
        s.flush()
        assert job.gpus == gpus  # read from the spec
        return job.id


def _dispatch(settings: Settings, broker: Broker) -> list[str]:
    return dispatch.dispatch(sessions(settings.database_url), settings, broker)


def _place(settings: Settings, job_id: str) -> dispatch.QueuePlace | None:
    with session_scope(settings.database_url) as s:
        job = s.get(Job, job_id)
        assert job is not None
        return dispatch.queue_info(s, settings, job)


def test_capacity_is_the_slots_the_live_workers_announce(live: Settings) -> None:
    owner, _ = make_user(live.database_url, "a")
    jobs = [_queue(live, owner) for _ in range(5)]
    broker = Broker()
    assert _dispatch(live, broker) == []  # no worker: nothing goes out
    assert _place(live, jobs[0]) == {"position": 0, "reason": "no worker is running"}

    _announce(live, "w1@a", slots=1, gpus=0)
    _announce(live, "w2@b", slots=2, gpus=0)
    assert _dispatch(live, broker) == jobs[:3]  # 1 + 2 slots, no setting changed
    assert sorted(q or "" for q in broker.sent.values()) == [
        "trainq.host.w1@a", "trainq.host.w2@b", "trainq.host.w2@b",
    ]  # fmt: skip
    with session_scope(live.database_url) as s:
        assert {s.get(Job, j).sent_to for j in jobs[:3]} == {"w1@a", "w2@b"}  # type: ignore[union-attr]
    assert _dispatch(live, broker) == []  # all three slots held
    assert _place(live, jobs[3])["reason"] == "all 3 worker slots are busy"  # type: ignore[index]

    # A third worker joins: its slot counts at once. It leaves: it stops counting at once.
    _announce(live, "w3@c", slots=1, gpus=0, ttl=0.5)
    assert _dispatch(live, broker) == [jobs[3]] and broker.sent[jobs[3]] == "trainq.host.w3@c"
    with session_scope(live.database_url) as s:  # its job ends
        s.get(Job, jobs[3]).status = JobStatus.succeeded  # type: ignore[union-attr]
    time.sleep(0.7)
    assert [w.name for w in workers.live(redis.Redis.from_url(live.redis_url))] == [
        "w1@a", "w2@b",
    ]  # fmt: skip
    assert _dispatch(live, broker) == []


def test_a_job_asking_for_gpus_goes_only_to_a_slot_that_has_them(live: Settings) -> None:
    owner, _ = make_user(live.database_url, "a")
    for name, gpus in (("none@h0", 0), ("one@h1", 1), ("two@h2", 2)):
        _announce(live, name, slots=1, gpus=gpus)
    broker = Broker()
    three = _queue(live, owner, gpus=3)
    two = _queue(live, owner, gpus=2)
    cpu = _queue(live, owner)
    one = _queue(live, owner, gpus=1)
    assert set(_dispatch(live, broker)) == {two, cpu, one}
    assert broker.sent == {
        two: "trainq.host.two@h2", cpu: "trainq.host.none@h0", one: "trainq.host.one@h1",
    }  # fmt: skip
    place = _place(live, three)
    assert place is not None and "asks for 3 GPUs" in place["reason"]
    assert "the most: 2" in place["reason"]

    # Another 2-GPU job waits for the one slot that has two, though other slots come free.
    again = _queue(live, owner, gpus=2)
    with session_scope(live.database_url) as s:
        s.get(Job, cpu).status = JobStatus.succeeded  # type: ignore[union-attr]
    assert _dispatch(live, broker) == []
    assert _place(live, again)["reason"] == "all worker slots with 2 GPUs are busy"  # type: ignore[index]


def test_a_fixed_total_of_slots_sends_to_the_shared_queue(live: Settings) -> None:
    fixed = live.model_copy(update={"worker_slots": 1})
    owner, _ = make_user(live.database_url, "a")
    job = _queue(fixed, owner)
    broker = Broker()
    assert _dispatch(fixed, broker) == [job] and broker.sent == {job: None}


def test_a_job_no_worker_could_ever_take_is_refused_at_submit(
    settings: Settings, alice: dict[str, object]
) -> None:
    def submit(client: FlaskClient, gpus: int) -> tuple[int, dict[str, object]]:
        spec = {**quickstart(epochs=1), "resources": {"gpus": gpus}}
        r = client.post("/api/v1/jobs", json=spec, headers=alice["headers"])
        return r.status_code, r.get_json()

    client = create_app(settings).test_client()  # TRAINQ_MAX_GPUS_PER_JOB=0: no GPU jobs
    status, body = submit(client, 1)
    assert status == 422 and body["error"]["details"]["field"] == "resources.gpus"  # type: ignore[index]
    client = create_app(settings.model_copy(update={"max_gpus_per_job": 2})).test_client()
    assert submit(client, 2)[0] == 202
    status, body = submit(client, 3)
    assert status == 422 and body["error"]["details"]["field"] == "resources.gpus"  # type: ignore[index]
    assert "may ask for: 2" in body["error"]["message"]  # type: ignore[index]
    assert submit(client, 17)[0] == 422  # beyond what any spec may ask


def test_gpus_are_listed_counted_or_detected_and_split_evenly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert workers.host_gpus("0, 1") == ["0", "1"]
    assert workers.host_gpus("3") == ["0", "1", "2"]
    monkeypatch.setenv("PATH", "")  # no nvidia-smi: no GPUs
    assert workers.host_gpus("") == []
    assert workers.split_gpus(["0", "1", "2", "3", "4"], 2) == [["0", "1"], ["2", "3"]]
    assert workers.split_gpus(["0"], 2) == [[], []]
    assert workers.split_gpus([], 1) == [[]]
    monkeypatch.setenv(presence.SLOTS_ENV, '[["2", "3"]]')
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert presence.claim_gpus() == "2,3"


def test_a_job_lost_in_a_dead_workers_queue_is_placed_again(live: Settings) -> None:
    from worker.periodic import reconcile_once

    owner, _ = make_user(live.database_url, "a")
    job_id = _queue(live, owner)
    old = utcnow() - timedelta(minutes=5)
    with session_scope(live.database_url) as s:  # sent to a worker that died before taking it
        job = s.get(Job, job_id)
        assert job is not None
        job.sent_at, job.sent_to = old, "gone@x"
    broker = Broker()
    assert reconcile_once(live, broker)["resent"] == [job_id] and broker.sent == {}
    _announce(live, "w@a", slots=1, gpus=0)
    assert _dispatch(live, broker) == [job_id] and broker.sent == {job_id: "trainq.host.w@a"}
