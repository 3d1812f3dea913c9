"""Workers killed and stopped for real: jobs resume at the interrupted epoch, once each."""

from __future__ import annotations

import os
import signal

import pytest
import requests

from shared.models import Job, JobStatus
from tests.chaos.conftest import Stack
from tests.specs import quickstart
from tests.support import ROOT

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


def _epochs(job: Job) -> list[int]:
    return [e.epoch for e in job.epochs]


def test_a_worker_killed_mid_epoch_resumes_at_that_epoch(stack: Stack) -> None:
    stack.start_web()
    stack.start_worker()
    stack.start_periodic()
    job_id = stack.submit(quickstart(epochs=5, batch_size=16))
    job = stack.wait(lambda: (j := stack.job(job_id)).epochs_done == 2 and j, "epoch 2 to end")
    child = int(str(job.worker).rsplit(":", 1)[1])
    os.kill(child, signal.SIGKILL)  # the training process, in the middle of epoch 3
    assert stack.job(job_id).epochs_done == 2

    job = stack.wait_finished(job_id)
    assert job.status == JobStatus.succeeded, job.error
    assert _epochs(job) == [1, 2, 3, 4, 5]
    # The second attempt, in another process, started at epoch 3: the worker recorded it.
    assert (job.attempt, job.first_epoch) == (2, 3)
    assert job.worker != f"{job.worker.split(':')[0]}:{child}"  # type: ignore[union-attr]
    assert stack.unfinished() == []


def test_sigterm_hands_the_job_back_and_another_worker_resumes_it(stack: Stack) -> None:
    stack.start_web()
    first = stack.start_worker("first")
    stack.start_periodic()
    job_id = stack.submit(quickstart(epochs=5, batch_size=16))
    stack.wait(lambda: stack.job(job_id).epochs_done >= 2, "epoch 2 to end")
    first.send_signal(signal.SIGTERM)  # what `docker stop` or a rolling restart does
    first.wait(60)  # it stops after the batch in progress instead of training to the end

    job = stack.job(job_id)
    assert job.status == JobStatus.queued and job.worker is None
    handed_back_at = job.epochs_done
    assert handed_back_at < 5
    assert "handed back at shutdown" in (stack.var_dir / "first.log").read_text()

    stack.start_worker("second")
    job = stack.wait_finished(job_id)
    assert job.status == JobStatus.succeeded, job.error
    assert _epochs(job) == [1, 2, 3, 4, 5]
    # A hand-back does not use up an attempt; the new worker began where the old one stopped.
    assert (job.attempt, job.first_epoch) == (1, handed_back_at + 1)
    assert stack.unfinished() == []


@pytest.mark.serial  # the cancel within seconds
def test_cancel_stops_a_running_job_and_keeps_its_last_epochs_model(stack: Stack) -> None:
    stack.start_web()
    stack.start_worker()
    stack.start_periodic()
    job_id = stack.submit(quickstart(epochs=1000))  # minutes of training
    stack.wait(lambda: stack.job(job_id).epochs_done >= 1, "epoch 1 to end")
    r = requests.post(f"{stack.url}/api/v1/jobs/{job_id}/cancel", headers=stack.headers)
    assert r.status_code == 202, r.text
    asked_at = stack.job(job_id).epochs_done

    # Seen within half a second and a call of the compiled function (up to 32 batches, a small
    # part of an epoch here), plus the model save: seconds, where the job had minutes to go.
    job = stack.wait_finished(job_id, timeout=10)
    assert job.status == JobStatus.cancelled
    assert asked_at <= job.epochs_done < 1000
    assert _epochs(job) == list(range(1, job.epochs_done + 1))  # the epoch in progress dropped

    url = f"{stack.url}/api/v1/jobs/{job_id}"
    r = requests.post(f"{url}/predict", data=(ROOT / "examples" / "three_digits.json").read_bytes(),
                      headers=stack.headers | {"Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert [p["class"] for p in r.json()["predictions"]] == [7, 2, 1]
    assert requests.get(f"{url}/model", headers=stack.headers).status_code == 200
    r = requests.post(f"{url}/cancel", headers=stack.headers)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "conflict")
    assert stack.unfinished() == []
