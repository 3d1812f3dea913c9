"""Worker processes: one keeps TensorFlow loaded from job to job, and a fresh one replaces it
after TRAINQ_WORKER_JOBS_PER_CHILD jobs, returning what TensorFlow kept of them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.db import session_scope
from shared.models import Job
from tests.live import sqlite_service
from tests.specs import quickstart

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


def test_a_worker_process_trains_its_jobs_then_is_replaced(tmp_path: Path, redis_url: str) -> None:
    with sqlite_service(tmp_path, redis_url, 9, TRAINQ_WORKER_JOBS_PER_CHILD="2") as live:
        ids = []
        for _ in range(3):
            job = live.wait(live.submit(quickstart(epochs=1))["id"])
            assert job["status"] == "succeeded", job["error"]
            ids.append(job["id"])
        with session_scope(live.db_url) as s:
            workers = [s.get(Job, i).worker for i in ids]  # type: ignore[union-attr]
        # Each process's TensorFlow threads: ops side by side on its share of the cores (all of
        # them for one training slot), each op on half of it.
        cores = os.cpu_count() or 1
        threads = f"TensorFlow loaded, {max(1, cores // 2)} threads an op, {cores} ops at once"
        assert live.service.log("worker").count(threads) >= 2  # the first and its replacement
    assert None not in workers
    assert workers[0] == workers[1] != workers[2], workers  # host:pid of the process
