"""What the service changes for speed leaves the training exactly as the user specified it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from shared.keras_build import auto_steps_per_execution
from shared.settings import Settings
from shared.spec import JobSpec
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
