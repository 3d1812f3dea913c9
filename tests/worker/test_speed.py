"""What the service changes for speed leaves the training exactly as the user specified it."""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import numpy as np
import pytest

import worker.training
from shared.ml.build import auto_steps_per_execution
from shared.settings import Settings
from shared.spec.job import JobSpec
from tests.specs import quickstart
from tests.worker.test_supervision import _get, _job
from worker.training import run_job

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def wsettings(tmp_path: Path, sqlite_url: str) -> Settings:
    return Settings(
        var_dir=tmp_path, database_url=sqlite_url, redis_url="redis://127.0.0.1:1/0",
        artifacts=tmp_path / "artifacts",
    )  # fmt: skip


@pytest.mark.slow
def test_chosen_steps_per_execution_leaves_the_history_identical(
    wsettings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    as_specified = quickstart(epochs=3)
    as_specified["compile"]["steps_per_execution"] = 1
    chosen = quickstart(epochs=3)  # steps_per_execution left to the service
    histories = []
    caplog.set_level(logging.INFO, logger="worker.training")
    for spec in (as_specified, chosen):
        job_id = _job(wsettings, spec)
        run_job(wsettings, job_id)
        job = _get(wsettings, job_id)
        assert job.status == "succeeded", job.error
        histories.append([e.metrics for e in job.epochs])
    assert "steps_per_execution=1" in caplog.text and "steps_per_execution=32" in caplog.text
    first, second = histories
    assert len(first) == len(second) == 3
    for a, b in zip(first, second, strict=True):
        assert a.keys() == b.keys() and {"loss", "accuracy", "val_loss"} <= a.keys()
        np.testing.assert_allclose([a[k] for k in a], [b[k] for k in a], rtol=0, atol=1e-6)


def test_the_service_chooses_only_where_nothing_needs_every_batch() -> None:
    def choice(**changes: object) -> int:
        spec = quickstart()
        for path, value in changes.items():
            part, key = path.split("__")
            spec[part][key] = value
        return auto_steps_per_execution(JobSpec.model_validate(spec), 141, 32)

    assert choice() == 32
    assert choice(compile__steps_per_execution=4) == 4  # the user's choice is kept
    assert choice(compile__run_eagerly=True) == 1
    assert choice(fit__callbacks=[{"class_name": "TerminateOnNaN", "config": {}}]) == 1
    assert choice(fit__callbacks=[{"class_name": "EarlyStopping", "config": {}}]) == 32
    spec = JobSpec.model_validate(quickstart())
    assert auto_steps_per_execution(spec, 5, 32) == 5  # never more than an epoch's steps
    assert choice(fit__validation_steps=2) == 2  # nor than a limited validation pass
    assert auto_steps_per_execution(spec, 141, 1) == 1  # TRAINQ_AUTO_STEPS_PER_EXECUTION=1: off


def _functions() -> int:
    """Functions TensorFlow holds for this process (what a worker process keeps job after job)."""
    from tensorflow.python.eager import context

    gc.collect()  # only what is still held counts
    return len(context.context().list_function_names())


@pytest.mark.slow  # five jobs
def test_a_worker_process_keeps_nothing_of_a_finished_job(
    wsettings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Job after job in one process, TensorFlow holds no more functions than after the first:
    the optimizer's and metrics' variables are made before training, not while it is traced.
    Without that (the control), each job leaves its variables' initialisers behind."""

    def jobs_in_a_row(n: int) -> list[int]:
        held = []
        for _ in range(n):
            job_id = _job(wsettings, quickstart(epochs=1, validation_split=0.0))
            run_job(wsettings, job_id)
            assert _get(wsettings, job_id).status == "succeeded"
            held.append(_functions())
        return held

    first, *then = jobs_in_a_row(3)
    assert then == [first, first]

    monkeypatch.setattr(worker.training, "build_state", lambda *_: None)
    _, *control = jobs_in_a_row(2)
    assert control[0] > first  # the leak the build prevents is real in this TensorFlow
