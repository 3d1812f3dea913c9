"""Sweeps on a real stack (API, Celery worker, beat): pruning stops the hopeless trials, a
sweep's trials share the queue fairly, and a trial whose worker is killed resumes."""

from __future__ import annotations

import copy
import json
import os
import signal
from datetime import datetime
from typing import Any

import pytest
import requests
from sqlalchemy import select

from shared.db import session_scope
from shared.models import Job, JobStatus
from shared.sweeps import engine
from shared.sweeps.spec import SweepSpec
from tests.chaos.conftest import Stack
from tests.conftest import make_user
from tests.specs import quickstart
from tests.support import ROOT

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]

EXAMPLE: dict[str, Any] = json.loads((ROOT / "examples" / "sweep.json").read_text())
LR = "compile.optimizer.config.learning_rate"


def sweep_body(space: dict[str, Any], epochs: int, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE)
    body["spec"]["fit"]["epochs"] = epochs
    body.update(space=space, sampler="grid", pruner={"type": "none"}, max_concurrent=1)
    body.update(changes)
    return body


def submit_sweep(stack: Stack, body: dict[str, Any], headers: dict[str, str] | None = None) -> str:
    r = requests.post(f"{stack.url}/api/v1/sweeps", json=body,
                      headers=headers or stack.headers, timeout=120)  # fmt: skip
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def get_sweep(stack: Stack, sweep_id: str) -> dict[str, Any]:
    r = requests.get(f"{stack.url}/api/v1/sweeps/{sweep_id}", headers=stack.headers, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def wait_sweep(stack: Stack, sweep_id: str, timeout: float = 400) -> dict[str, Any]:
    def over() -> dict[str, Any] | None:
        sweep = get_sweep(stack, sweep_id)
        return sweep if sweep["status"] != "running" else None

    return stack.wait(over, f"sweep {sweep_id} to end", timeout)  # type: ignore[no-any-return]


def trial_jobs(stack: Stack, sweep_id: str) -> list[Job]:
    with session_scope(stack.db_url) as s:
        jobs = list(s.scalars(select(Job).where(Job.sweep_id == sweep_id).order_by(Job.trial)))
        for job in jobs:
            _ = job.epochs
        return jobs


def seed_with_good_trials_first(body: dict[str, Any], good: int) -> int:
    """A sweep seed whose grid tries the ``good`` learning rates (below 0.01) first: the
    median pruner then has finished trials to compare the diverging ones with."""
    for seed in range(1000):
        sweep = SweepSpec.model_validate({**body, "seed": seed})
        records: list[engine.TrialRecord] = []
        for number in range(good):
            params, attrs = engine.ask(sweep, "seeded", records)
            records.append(engine.TrialRecord(number, params, "complete", 0.0, attrs=attrs))
        if all(r.params[LR] < 0.01 for r in records):
            return seed
    raise AssertionError("no seed puts the good trials first")


def test_the_median_pruner_stops_the_diverging_trials_early(stack: Stack) -> None:
    stack.start_web()
    stack.start_worker()
    stack.start_periodic()
    # Half the trials diverge: Adam at a learning rate of 0.5 or 2 leaves this model at chance
    # (a validation loss of 2.9 and 10.7 after one epoch, against 0.4 at 0.001).
    body = sweep_body(
        {LR: {"type": "categorical", "choices": [0.001, 0.002, 0.5, 2.0]}}, epochs=3,
        objective={"metric": "val_loss", "direction": "minimize"},
        pruner={"type": "median", "n_startup_trials": 2}, max_trials=4,
    )  # fmt: skip
    body["seed"] = seed_with_good_trials_first(body, 2)
    sweep = wait_sweep(stack, submit_sweep(stack, body))

    assert sweep["status"] == "succeeded", sweep
    by_lr = {t["params"][LR]: t for t in sweep["tried"]}
    assert sorted(by_lr) == [0.001, 0.002, 0.5, 2.0]
    for lr in (0.001, 0.002):
        assert by_lr[lr]["status"] == "succeeded" and by_lr[lr]["epochs_done"] == 3
    for lr in (0.5, 2.0):
        assert by_lr[lr]["status"] == "pruned", by_lr[lr]
        assert by_lr[lr]["epochs_done"] < 3
    assert sweep["trials"] == {"succeeded": 2, "pruned": 2}
    assert sweep["best"]["params"][LR] in (0.001, 0.002)
    assert sweep["best"]["value"] == min(by_lr[lr]["value"] for lr in (0.001, 0.002))

    # A pruned trial is a job like any other: its history and its model are kept.
    pruned = by_lr[2.0]["job_id"]
    job = requests.get(f"{stack.url}/api/v1/jobs/{pruned}", headers=stack.headers).json()
    assert job["status"] == "pruned" and job["sweep_id"] == sweep["id"] and job["trial"] >= 2
    assert len(job["history"]) == by_lr[2.0]["epochs_done"]
    assert job["progress"]["percent"] == 100.0 and "pruned after epoch" in job["progress"]["text"]
    r = requests.post(f"{stack.url}/api/v1/jobs/{pruned}/predict", headers=stack.headers,
                      json={"instances": [[[0] * 28] * 28]})  # fmt: skip
    assert r.status_code == 200, r.text
    assert stack.unfinished() == []


def test_another_users_job_waits_for_at_most_one_trial(stack: Stack) -> None:
    stack.env["TRAINQ_WORKER_SLOTS"] = "1"
    stack.start_web()
    stack.start_worker()
    stack.start_periodic()
    _, token = make_user(stack.db_url, "bob")
    bob = {"Authorization": f"Bearer {token}"}
    # Alice's sweep: 30 one-epoch trials, all queued at once.
    body = sweep_body(
        {"model.layers[1].config.units": {"type": "int", "low": 16, "high": 45}}, epochs=1,
        max_trials=30, max_concurrent=30,
    )  # fmt: skip
    sweep_id = submit_sweep(stack, body)
    assert sum(get_sweep(stack, sweep_id)["trials"].values()) == 30
    submitted = datetime.now().astimezone()
    r = requests.post(f"{stack.url}/api/v1/jobs", json=quickstart(epochs=1), headers=bob)
    assert r.status_code == 202, r.text
    bobs = r.json()["id"]
    stack.wait_finished(bobs)

    with session_scope(stack.db_url) as s:
        started = list(s.execute(
            select(Job.id, Job.started_at).where(Job.started_at.is_not(None))
            .order_by(Job.started_at)
        ))  # fmt: skip
    after = [job_id for job_id, at in started if at > submitted]
    assert bobs in after[:2], (bobs, after[:5])  # the next to start, or the one after
    r = requests.post(f"{stack.url}/api/v1/sweeps/{sweep_id}/cancel", headers=stack.headers)
    assert r.status_code in (200, 202), r.text
    assert wait_sweep(stack, sweep_id)["status"] == "cancelled"
    assert stack.unfinished() == []


def test_a_trial_whose_worker_is_killed_resumes_and_the_sweep_ends(stack: Stack) -> None:
    stack.start_web()
    stack.start_worker()
    stack.start_periodic()
    body = sweep_body(
        {"fit.batch_size": {"type": "categorical", "choices": [16, 32]}}, epochs=4, max_trials=2
    )
    sweep_id = submit_sweep(stack, body)

    def second_epoch_done() -> Job | None:
        running = [j for j in trial_jobs(stack, sweep_id) if j.status == JobStatus.running]
        return running[0] if running and running[0].epochs_done >= 2 else None

    job = stack.wait(second_epoch_done, "a trial's second epoch")
    os.kill(int(str(job.worker).rsplit(":", 1)[1]), signal.SIGKILL)  # mid-epoch 3

    sweep = wait_sweep(stack, sweep_id)
    assert sweep["status"] == "succeeded", sweep
    assert sweep["trials"] == {"succeeded": 2}
    for trial in trial_jobs(stack, sweep_id):
        assert [e.epoch for e in trial.epochs] == [1, 2, 3, 4]  # each epoch once
    killed = next(t for t in trial_jobs(stack, sweep_id) if t.id == job.id)
    assert (killed.attempt, killed.first_epoch) == (2, 3)
    assert stack.unfinished() == []
