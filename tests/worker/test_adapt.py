"""A Normalization left to adapt(): the worker adapts it on the training data, once (real Keras)."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared import artifacts
from shared.datasets.builtin import load
from shared.db import session_scope, sessions
from shared.jobs import lifecycle
from shared.ml.build import build_model, compile_model, preprocess
from shared.models import Job, JobStatus, utcnow
from shared.settings import Settings
from shared.spec.job import JobSpec
from tests.specs import quickstart
from tests.worker.test_supervision import _get, _job
from worker import checkpoint
from worker.callbacks import supervision
from worker.training import run_job
from worker.watch import Watch, checkpoint_dir

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def wsettings(tmp_path: Path, sqlite_url: str) -> Settings:
    return Settings(
        var_dir=tmp_path, database_url=sqlite_url, redis_url="redis://127.0.0.1:1/0",
        artifacts=tmp_path / "artifacts", heartbeat_seconds=0.5, stale_seconds=2,
    )  # fmt: skip


def _spec(epochs: int) -> dict[str, Any]:
    """The quickstart with a Normalization left to adapt(), after a Rescaling (as EfficientNet)."""
    spec = quickstart(epochs=epochs)  # validation_split 0.1
    spec["model"]["layers"][1:1] = [
        {"class_name": "Rescaling", "config": {"scale": 2.0, "offset": -1.0}},
        {"class_name": "Normalization", "config": {"name": "pixels"}},
    ]
    return spec


def _stats(settings: Settings, job_id: str) -> tuple[np.ndarray, np.ndarray]:
    """The stored model's (mean, variance) of its Normalization."""
    import keras

    path = artifacts.job_dir(settings.artifacts, job_id) / artifacts.MODEL_FILES["keras"]
    layer = keras.models.load_model(path).get_layer("pixels")
    return np.asarray(layer.mean).ravel(), np.asarray(layer.variance).ravel()


def test_a_normalization_left_to_adapt_is_adapted_on_the_training_data(
    wsettings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="worker.training")
    job_id = _job(wsettings, _spec(epochs=1))
    run_job(wsettings, job_id)
    job = _get(wsettings, job_id)
    assert job.status == JobStatus.succeeded, job.error
    assert "Normalization 'pixels' adapted on the training data" in caplog.text
    # Its input is the Rescaling's output, over the rows it trains on: validation_split's last
    # tenth is not training data.
    x = load("mnist-sample").x_train
    seen = preprocess(x[: int(len(x) * 0.9)], 255.0).reshape(-1, 28 * 28) * 2.0 - 1.0
    mean, variance = _stats(wsettings, job_id)
    np.testing.assert_allclose(mean, seen.mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(variance, seen.var(axis=0), atol=1e-4)
    every_row = preprocess(x, 255.0).reshape(-1, 28 * 28).mean(axis=0) * 2.0 - 1.0
    assert np.abs(mean - every_row).max() > 1e-3


def test_a_resumed_job_keeps_the_statistics_of_its_checkpoint(
    wsettings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Its checkpoint's weights hold the statistics: they are not computed again."""
    url = wsettings.database_url
    job_id = _job(wsettings, _spec(epochs=2))
    assert lifecycle.start(sessions(url), job_id, "gone:1")
    spec = JobSpec.model_validate(_spec(epochs=2))
    data = load("mnist-sample")
    x = preprocess(data.x_train, 255.0)
    model = build_model(spec, tuple(x.shape[1:]))
    model.get_layer("pixels").adapt(np.full((4, 784), 5.0, "float32"))  # not the data's: marked
    compile_model(model, spec)
    model.fit(x[:64], data.y_train[:64], epochs=1, verbose=0,
              callbacks=supervision(Watch(wsettings, job_id, spec)))  # fmt: skip
    assert checkpoint.read_meta(checkpoint_dir(wsettings, job_id))["epoch"] == 1  # type: ignore[index]
    with session_scope(url) as s:  # its worker is gone: its heartbeat is old
        s.get(Job, job_id).heartbeat_at = utcnow() - timedelta(minutes=5)  # type: ignore[union-attr]
    caplog.set_level(logging.INFO, logger="worker.training")

    run_job(wsettings, job_id)
    job = _get(wsettings, job_id)
    assert job.status == JobStatus.succeeded, job.error
    assert (job.attempt, job.first_epoch) == (2, 2)
    assert "adapted on the training data" not in caplog.text
    mean, variance = _stats(wsettings, job_id)
    np.testing.assert_allclose(mean, 5.0)
    np.testing.assert_allclose(variance, 0.0)
