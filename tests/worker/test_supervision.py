"""A job in the worker: NaN loss, time limit, cancel, resume from its checkpoint (real Keras)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from shared.datasets.builtin import load
from shared.db import session_scope, sessions
from shared.jobs import lifecycle
from shared.ml.build import build_model, compile_model, preprocess
from shared.models import EpochRecord, Job, JobStatus, utcnow
from shared.settings import Settings
from shared.spec.job import JobSpec
from tests.conftest import make_user
from tests.specs import quickstart
from worker import checkpoint
from worker.callbacks import EpochRecorder, supervision
from worker.training import run_job
from worker.watch import Watch, checkpoint_dir

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def wsettings(tmp_path: Path, sqlite_url: str) -> Settings:
    # No broker: nothing here sends a job anywhere.
    return Settings(
        var_dir=tmp_path, database_url=sqlite_url, redis_url="redis://127.0.0.1:1/0",
        artifacts=tmp_path / "artifacts", heartbeat_seconds=0.5, stale_seconds=2,
    )  # fmt: skip


def _job(settings: Settings, spec: dict[str, Any]) -> str:
    owner, _ = make_user(settings.database_url, f"u{time.monotonic_ns()}")
    with session_scope(settings.database_url) as s:
        job = Job(
            owner_id=owner, name="j", spec=spec, epochs_total=spec["fit"]["epochs"],
            status=JobStatus.queued,
        )  # fmt: skip
        s.add(job)
        s.flush()
        return job.id


def _get(settings: Settings, job_id: str) -> Job:
    with session_scope(settings.database_url) as s:
        job = s.get(Job, job_id)
        assert job is not None
        _ = job.epochs, job.artifacts  # load them before the session closes
        return job


def test_a_nan_loss_fails_the_job_saying_so(wsettings: Settings) -> None:
    spec = quickstart(epochs=3)
    spec["compile"]["optimizer"] = {"class_name": "SGD", "config": {"learning_rate": 1e12}}
    job_id = _job(wsettings, spec)
    run_job(wsettings, job_id)
    job = _get(wsettings, job_id)
    assert job.status == JobStatus.failed
    assert job.error is not None and job.error.startswith("NaN loss: the loss became")
    assert job.epochs == []  # the epoch in progress was not recorded as finished
    assert not checkpoint_dir(wsettings, job_id).exists()


@pytest.mark.serial  # times the job
def test_the_time_limit_fails_the_job_with_timeout(wsettings: Settings) -> None:
    # The limit counts from the job's start (building the model and the first epoch's tracing
    # included), so it leaves room for an epoch or two on a loaded machine; 200 epochs take
    # far longer.
    spec = quickstart(epochs=200, batch_size=8) | {"time_limit_seconds": 8}
    job_id = _job(wsettings, spec)
    started = time.monotonic()
    run_job(wsettings, job_id)
    took = time.monotonic() - started
    job = _get(wsettings, job_id)
    assert job.status == JobStatus.failed
    assert job.error == "timeout: the job reached its time limit of 8 s"
    assert took < 8 + 10  # stopped at a batch boundary, not at the end of 200 epochs
    assert 0 < job.epochs_done < 200 and len(job.epochs) == job.epochs_done  # those are kept


def test_the_server_maximum_caps_the_time_limit(wsettings: Settings) -> None:
    capped = wsettings.model_copy(update={"max_job_seconds": 2})
    job_id = _job(capped, quickstart(epochs=200, batch_size=8) | {"time_limit_seconds": 3600})
    run_job(capped, job_id)
    assert _get(capped, job_id).error == "timeout: the job reached its time limit of 2 s"


@pytest.mark.serial  # times the cancel
def test_cancel_keeps_the_last_finished_epochs_model(wsettings: Settings) -> None:
    job_id = _job(wsettings, quickstart(epochs=50))

    def cancel_after_two_epochs() -> None:
        while _get(wsettings, job_id).epochs_done < 2:
            time.sleep(0.02)
        with session_scope(wsettings.database_url) as s:
            assert lifecycle.request_cancel(s, job_id) == JobStatus.running

    canceller = threading.Thread(target=cancel_after_two_epochs)
    canceller.start()
    run_job(wsettings, job_id)
    canceller.join()
    job = _get(wsettings, job_id)
    assert job.status == JobStatus.cancelled and job.error is None
    assert job.cancel_requested_at is not None and job.finished_at is not None
    # Seen within half a second and one call of the compiled function, plus the model save
    # (short epochs may finish meanwhile); the job had 50 epochs to go.
    assert (job.finished_at - job.cancel_requested_at).total_seconds() < 3
    assert 2 <= job.epochs_done < 50
    assert [e.epoch for e in job.epochs] == list(range(1, job.epochs_done + 1))
    assert {a.format for a in job.artifacts} == {"keras", "h5"}
    # The saved model is the last finished epoch's: it scores that epoch's validation loss.
    import keras

    model = keras.models.load_model(wsettings.artifacts / job.artifacts[0].path)
    data = load("mnist-sample")
    n_val = int(len(data.x_train) * 0.1)
    x_val = preprocess(data.x_train[-n_val:], 255.0)
    loss = model.evaluate(x_val, data.y_train[-n_val:], verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(job.epochs[-1].metrics["val_loss"], rel=1e-4)
    assert not checkpoint_dir(wsettings, job_id).exists()


def test_a_retaken_job_resumes_at_the_interrupted_epoch(wsettings: Settings) -> None:
    """A worker died after epoch 2 was checkpointed but before the database recorded it."""
    url = wsettings.database_url
    job_id = _job(wsettings, quickstart(epochs=3))
    assert lifecycle.start(sessions(url), job_id, "gone:1")
    spec = JobSpec.model_validate(quickstart(epochs=3))
    data = load("mnist-sample")
    x = preprocess(data.x_train, 255.0)
    model = build_model(spec, tuple(x.shape[1:]))
    compile_model(model, spec)
    watch = Watch(wsettings, job_id, spec)
    model.fit(x, data.y_train, epochs=2, validation_split=0.1, verbose=0,
              callbacks=[*supervision(watch), EpochRecorder(watch)])  # fmt: skip
    folder = checkpoint_dir(wsettings, job_id)
    assert checkpoint.read_meta(folder)["epoch"] == 2  # type: ignore[index]
    with session_scope(url) as s:
        s.execute(delete(EpochRecord).where(EpochRecord.job_id == job_id, EpochRecord.epoch == 2))
        job = s.get(Job, job_id)
        assert job is not None
        job.epochs_done, job.heartbeat_at = 1, utcnow() - timedelta(minutes=5)

    run_job(wsettings, job_id)
    job = _get(wsettings, job_id)
    assert job.status == JobStatus.succeeded, job.error
    assert (job.attempt, job.first_epoch, job.epochs_done) == (2, 3, 3)
    assert [e.epoch for e in job.epochs] == [1, 2, 3]
    # Epoch 2's record came from the checkpoint, with every metric Keras reported.
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(job.epochs[1].metrics)
    assert not folder.exists()


def test_a_job_lost_too_often_fails_saying_so(wsettings: Settings) -> None:
    job_id = _job(wsettings, quickstart(epochs=1))
    url, stale = wsettings.database_url, timedelta(seconds=1)
    for n in range(1, 4):
        assert lifecycle.start(sessions(url), job_id, f"w:{n}", stale_after=stale, max_attempts=3)
        with session_scope(url) as s:
            s.get(Job, job_id).heartbeat_at = utcnow() - timedelta(minutes=5)  # type: ignore[union-attr]
    assert not lifecycle.start(sessions(url), job_id, "w:4", stale_after=stale, max_attempts=3)
    job = _get(wsettings, job_id)
    assert job.status == JobStatus.failed
    assert job.error is not None and job.error.startswith("gave up after 3 attempts")
