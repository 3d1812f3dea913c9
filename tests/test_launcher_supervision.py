"""`trainq up` supervises what it starts: a periodic, web or worker process that dies is
started again, and /healthz says when the periodic jobs stop running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from shared.db import session_scope
from shared.models import Event, Job, JobStatus, User, utcnow
from shared.spec.job import JobSpec
from tests.specs import quickstart
from tests.support import ROOT, dies_with_us, free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
TRAINQ = str(Path(sys.executable).parent / "trainq")


def _children(pid: int) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                found[int(child)] = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
    return found


def _periodic(up: int) -> int | None:
    return next((pid for pid, cmd in _children(up).items() if b"periodic@%h" in cmd), None)


def _health(url: str) -> dict[str, object] | None:
    try:
        return dict(requests.get(url + "/healthz", timeout=10).json())
    except (requests.RequestException, ValueError):
        return None


def test_a_killed_periodic_process_is_back_and_lost_jobs_are_still_requeued(
    tmp_path: Path,
) -> None:
    port, redis_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINQ_")}
    env.update(
        TRAINQ_VAR_DIR=str(tmp_path), TF_CPP_MIN_LOG_LEVEL="2", TRAINQ_PORT=str(port),
        TRAINQ_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0", TRAINQ_RECONCILE_SECONDS="1",
        TRAINQ_STALE_SECONDS="5", TRAINQ_WEB_WORKERS="1", TRAINQ_WORKER_SPARE="0",
    )  # fmt: skip
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen([TRAINQ, "up"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                          preexec_fn=dies_with_us())  # fmt: skip
    try:
        wait_until(lambda: str((_health(url) or {}).get("periodic", "")).startswith("ok"), 120,
                   "trainq up to serve with its periodic jobs running")  # fmt: skip
        first = _periodic(up.pid)
        assert first is not None
        os.kill(first, signal.SIGKILL)
        back = wait_until(lambda: (_periodic(up.pid) or first) != first and _periodic(up.pid),
                          15, "the periodic process to be started again")  # fmt: skip
        assert (
            "periodic exited with code -9; starting it again" in (tmp_path / "up.log").read_text()
        )

        def group_gone() -> bool:  # what the killed process started itself (its beat) is gone too
            try:
                os.killpg(first, 0)
            except ProcessLookupError:
                return True
            return False

        wait_until(group_gone, 10, "the killed periodic process's own children to be gone")

        # A job whose worker was lost (running, its heartbeat long silent): the new periodic
        # process puts it back in the queue, and the worker trains it.
        db_url = f"sqlite:///{(tmp_path / 'trainq.db').resolve()}"
        spec = JobSpec.model_validate(quickstart(epochs=1)).model_dump(mode="json")
        with session_scope(db_url) as s:
            admin = s.scalar(select(User).where(User.name == "admin"))
            assert admin is not None
            job = Job(owner_id=admin.id, name="lost", spec=spec, epochs_total=1,
                      status=JobStatus.running, attempt=1, worker="gone:1",
                      heartbeat_at=utcnow() - timedelta(minutes=10))  # fmt: skip
            s.add(job)
            s.flush()
            job_id = job.id

        def status() -> JobStatus | None:
            with session_scope(db_url) as s:
                return s.scalar(select(Job.status).where(Job.id == job_id))

        wait_until(lambda: status() == JobStatus.succeeded, 180, "the lost job to be retrained")
        with session_scope(db_url) as s:
            events = [e.data for e in s.scalars(select(Event).where(Event.job_id == job_id))]
        assert {"status": "queued", "reason": "worker went silent"} in events
        assert _periodic(up.pid) == back  # one restart was enough
        health = _health(url)
        assert health is not None and str(health["periodic"]).startswith("ok")
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(90)
    assert code == 0
