"""Checkpoints through the store: a corrupt or missing one, a job resumed on another host from
the stored one, and a store that stays away (real Keras, a real S3 server: moto's)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from shared.datasets.builtin import load
from shared.db import session_scope, sessions
from shared.jobs import lifecycle
from shared.ml.build import build_model, compile_model, preprocess
from shared.models import Job, JobStatus, utcnow
from shared.settings import Settings
from shared.spec.job import JobSpec
from tests.s3 import MotoServer, moto_server
from tests.specs import quickstart
from tests.worker.test_supervision import _get, _job
from worker import checkpoint
from worker.callbacks import EpochRecorder, supervision
from worker.training import run_job
from worker.watch import Watch, checkpoint_dir

pytestmark = pytest.mark.timeout(300)
BUCKET = "trainq-ckpt"


def _settings(var: Path, sqlite_url: str, **more: object) -> Settings:
    return Settings(
        var_dir=var, database_url=sqlite_url, redis_url="redis://127.0.0.1:1/0",
        artifacts=var / "artifacts", heartbeat_seconds=0.5, stale_seconds=2, **more,
    )  # fmt: skip


def _train_then_lose(settings: Settings, job_id: str, epochs: int) -> Path:
    """Train ``epochs`` epochs as a worker would, then lose that worker (heartbeat stale)."""
    assert lifecycle.start(sessions(settings.database_url), job_id, "gone:1")
    spec = JobSpec.model_validate(quickstart(epochs=3))
    data = load("mnist-sample")
    x = preprocess(data.x_train, 255.0)
    model = build_model(spec, tuple(x.shape[1:]))
    compile_model(model, spec)
    watch = Watch(settings, job_id, spec)
    model.fit(x, data.y_train, epochs=epochs, validation_split=0.1, verbose=0,
              callbacks=[*supervision(watch), EpochRecorder(watch)])  # fmt: skip
    watch.uploads.wait()  # the host goes once its last epoch is in the store
    with session_scope(settings.database_url) as s:
        job = s.get(Job, job_id)
        assert job is not None
        job.heartbeat_at = utcnow() - timedelta(minutes=5)
    return checkpoint_dir(settings, job_id)


def test_a_corrupt_checkpoint_resumes_from_the_one_before(tmp_path: Path, sqlite_url: str) -> None:
    settings = _settings(tmp_path, sqlite_url)
    job_id = _job(settings, quickstart(epochs=3))
    folder = _train_then_lose(settings, job_id, 2)
    meta = checkpoint.read_meta(folder)
    assert meta is not None and (meta["epoch"], meta["previous"]["epoch"]) == (2, 1)
    assert sorted(p.name for p in folder.glob("*.h5")) == [
        "epoch-00001.weights.h5", "epoch-00002.weights.h5",
    ]  # fmt: skip
    (folder / meta["weights"]).write_bytes(b"\x89HDF\r\n\x1a\n half a file")  # torn, corrupt

    run_job(settings, job_id)
    job = _get(settings, job_id)
    assert job.status == JobStatus.succeeded, job.error
    assert job.first_epoch == 2  # from epoch 1's backup: epoch 2 trained again
    assert [e.epoch for e in job.epochs] == [1, 2, 3]  # each recorded once
    assert not folder.exists()


@pytest.mark.parametrize("damage", ["weights gone", "description torn"])
def test_a_checkpoint_with_nothing_usable_starts_over(
    tmp_path: Path, sqlite_url: str, damage: str
) -> None:
    settings = _settings(tmp_path, sqlite_url)
    job_id = _job(settings, quickstart(epochs=2))
    folder = _train_then_lose(settings, job_id, 1)
    if damage == "weights gone":
        for weights in folder.glob("*.h5"):
            weights.unlink()
    else:
        (folder / checkpoint.META).write_text('{"epoch": 1, "weigh')

    run_job(settings, job_id)  # never raises: the worker goes on
    job = _get(settings, job_id)
    assert job.status == JobStatus.succeeded, job.error
    assert job.first_epoch == 1 and [e.epoch for e in job.epochs] == [1, 2]


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[MotoServer]:
    with moto_server(tmp_path) as server:
        server.make_bucket(BUCKET)
        yield server


def test_a_job_resumes_on_another_host_from_the_stored_checkpoint(
    tmp_path: Path, sqlite_url: str, moto: MotoServer
) -> None:
    store = {"storage_url": f"s3://{BUCKET}/t", "s3_endpoint_url": moto.endpoint}
    first = _settings(tmp_path / "a", sqlite_url, **store)
    job_id = _job(first, quickstart(epochs=3))
    _train_then_lose(first, job_id, 2)
    fs, prefix = moto.fs(), f"{BUCKET}/t/artifacts/{job_id}"
    assert sorted(fs.find(f"{prefix}/checkpoint")) == [
        f"{prefix}/checkpoint/checkpoint.json",
        f"{prefix}/checkpoint/epoch-00001.weights.h5",
        f"{prefix}/checkpoint/epoch-00002.weights.h5",
    ]

    other = _settings(tmp_path / "b", sqlite_url, **store)  # another host: nothing local
    run_job(other, job_id)
    job = _get(other, job_id)
    assert job.status == JobStatus.succeeded, job.error
    assert job.first_epoch == 3 and [e.epoch for e in job.epochs] == [1, 2, 3]
    stored = fs.find(prefix)
    assert f"{prefix}/model.keras" in stored and f"{prefix}/model.h5" in stored
    assert not [k for k in stored if "/checkpoint/" in k]
    assert any("/tensorboard/train/" in k for k in stored)
    leftovers = [p for p in (tmp_path / "b").rglob("*") if p.is_file()]
    assert leftovers == []  # the job's local files went once they were in the store


def test_a_store_that_stays_away_fails_the_job_saying_so(
    tmp_path: Path, sqlite_url: str, moto: MotoServer
) -> None:
    settings = _settings(tmp_path / "w", sqlite_url, storage_url=f"s3://{BUCKET}/away",
                         s3_endpoint_url=moto.endpoint, storage_wait_seconds=2)  # fmt: skip
    # An epoch's checkpoint goes up while the next trains, but training does not run ahead of
    # a store that fails: the failure shows an epoch or two after it went away, well before the
    # last of eight, however fast the epochs are.
    job_id = _job(settings, quickstart(epochs=8))

    def stop_after_the_first_epoch() -> None:
        while _get(settings, job_id).epochs_done < 1:
            time.sleep(0.05)
        moto.stop()

    threading.Thread(target=stop_after_the_first_epoch, daemon=True).start()
    started = time.monotonic()
    run_job(settings, job_id)  # returns: the worker is not brought down
    job = _get(settings, job_id)
    assert job.status == JobStatus.failed
    assert job.error is not None and job.error.startswith("StoreUnavailable: the store s3://")
    assert "cannot be reached" in job.error
    assert 1 <= job.epochs_done < 8
    assert time.monotonic() - started < 120
