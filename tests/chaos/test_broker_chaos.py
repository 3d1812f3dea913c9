"""The broker restarted empty and the API killed mid-submit: the database re-sends every job."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import pytest
import requests

from shared.models import JobStatus
from tests.chaos.conftest import FreezableProxy, Stack
from tests.specs import quickstart

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


def test_redis_restarted_empty_loses_no_job(stack: Stack) -> None:
    stack.start_web()
    stack.start_worker(concurrency=2)
    stack.start_periodic()
    ids = [stack.submit(quickstart(epochs=1)) for _ in range(10)]
    stack.wait(lambda: any(stack.job(j).status == JobStatus.running for j in ids), "a job to run")
    stack.redis.kill()  # every queued message is gone with it
    stack.redis.start()  # same port, empty

    for job_id in ids:
        job = stack.wait_finished(job_id, timeout=400)
        assert job.status == JobStatus.succeeded, job.error
        assert (job.attempt, [e.epoch for e in job.epochs]) == (1, [1])  # trained once
    assert stack.unfinished() == []


def test_api_killed_after_commit_before_send_loses_no_job(stack: Stack) -> None:
    proxy = FreezableProxy(stack.redis.port)
    try:
        # The API reaches the broker through a proxy the test can freeze.
        stack.start_web(redis_url=f"redis://127.0.0.1:{proxy.port}/0")
        stack.start_worker()
        stack.start_periodic()
        proxy.frozen.set()  # the API will commit the job, then hang while sending it
        outcome: dict[str, Any] = {}

        def submit() -> None:
            try:
                outcome["response"] = requests.post(
                    f"{stack.url}/api/v1/jobs", json=quickstart(epochs=1), headers=stack.headers,
                    timeout=60,
                )  # fmt: skip
            except requests.RequestException as exc:
                outcome["error"] = exc

        client = threading.Thread(target=submit)
        client.start()
        job_ids = stack.wait(lambda: stack.unfinished(), "the job to be committed")
        os.killpg(stack.procs["web"].pid, signal.SIGKILL)  # the whole API, mid-request
        client.join(30)
        assert "error" in outcome, "the API answered before it was killed"
        [job_id] = job_ids
        # The API died before it handed the job out; the periodic dispatcher (on the real
        # broker) hands it out instead, perhaps already while the API hung.
        job = stack.wait_finished(job_id)
        assert job.status == JobStatus.succeeded, job.error
        assert (job.attempt, [e.epoch for e in job.epochs]) == (1, [1])
        assert stack.unfinished() == []
    finally:
        proxy.frozen.clear()
        proxy.close()
