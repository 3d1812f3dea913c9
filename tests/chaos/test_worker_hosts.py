"""Workers that join and leave, with GPUs declared in their settings: the dispatcher counts the
slots they announce, and a GPU job runs only where a slot owns its GPUs."""

from __future__ import annotations

import os
import re
import signal
from typing import Any

import pytest
import redis
import requests

from shared import workers
from shared.models import JobStatus
from tests.chaos.conftest import Stack
from tests.specs import quickstart

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


def _worker(stack: Stack, name: str, gpus: str) -> Any:
    args = ["celery", "-A", "worker", "worker", "--queues", "celery", "--concurrency", "1",
            "--loglevel", "INFO", "--hostname", f"{name}-{stack.port}@%h"]  # fmt: skip
    return stack.spawn(name, args, TRAINQ_GPUS=gpus)


def _live(stack: Stack) -> dict[str, int]:
    """Live worker (by its name here) -> the GPUs of each of its slots."""
    found = workers.live(redis.Redis.from_url(stack.redis.url))
    return {w.name.split("-")[0]: w.gpus_per_slot for w in found}


def _queue_reason(stack: Stack, job_id: str) -> str:
    r = requests.get(f"{stack.url}/api/v1/jobs/{job_id}", headers=stack.headers, timeout=10)
    queue = r.json().get("queue") or {}
    return str(queue.get("reason", ""))


def test_workers_join_and_leave_and_a_gpu_job_runs_where_its_gpus_are(stack: Stack) -> None:
    stack.env.update(
        TRAINQ_WORKER_SLOTS="0", TRAINQ_MAX_GPUS_PER_JOB="2", TRAINQ_MAX_RUNNING_PER_USER="10"
    )
    stack.start_web()
    stack.start_periodic()
    _worker(stack, "none", "0")
    _worker(stack, "one", "1")
    stack.wait(lambda: _live(stack) == {"none": 0, "one": 1}, "two workers to announce")

    spec = quickstart(epochs=1, batch_size=500)
    r = requests.post(f"{stack.url}/api/v1/jobs", headers=stack.headers, timeout=30,
                      json={**spec, "resources": {"gpus": 3}})  # fmt: skip
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "resources.gpus"
    gpu_job = stack.submit({**spec, "resources": {"gpus": 2}})
    cpu_jobs = [stack.submit(spec) for _ in range(3)]
    stack.wait(lambda: "asks for 2 GPUs" in _queue_reason(stack, gpu_job), "the GPU job's reason")
    assert "the most: 1" in _queue_reason(stack, gpu_job)

    # A third worker, with two GPUs, joins while jobs are queued: no setting changes.
    third = _worker(stack, "two", "0,1")
    job = stack.wait_finished(gpu_job)
    assert job.status == JobStatus.succeeded, job.error
    assert str(job.sent_to).startswith(f"two-{stack.port}@")
    log = (stack.var_dir / "two.log").read_text(errors="replace")
    seen = re.search(rf"job_id={gpu_job} state=running .*CUDA_VISIBLE_DEVICES=(\S*)", log)
    assert seen is not None and seen.group(1) == "0,1", log[-3000:]
    for name in ("none", "one"):  # the others never ran it
        assert f"job_id={gpu_job} state=running" not in (stack.var_dir / f"{name}.log").read_text()
    for job_id in cpu_jobs:
        assert stack.wait_finished(job_id).status == JobStatus.succeeded

    # It leaves: its slot stops counting at once, and a 2-GPU job waits again.
    os.killpg(third.pid, signal.SIGTERM)
    stack.wait(lambda: _live(stack) == {"none": 0, "one": 1}, "the third worker to withdraw", 5)
    third.wait(60)
    again = stack.submit({**spec, "resources": {"gpus": 2}})
    stack.wait(lambda: "asks for 2 GPUs" in _queue_reason(stack, again), "the reason again")
    assert stack.job(again).status == JobStatus.queued
    requests.post(f"{stack.url}/api/v1/jobs/{again}/cancel", headers=stack.headers, timeout=10)
