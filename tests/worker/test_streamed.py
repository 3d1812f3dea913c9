"""A dataset over TRAINQ_DATASET_STREAM_BYTES trains from its files on disk, batch by batch, with
the same history and test metrics as the same dataset trained from memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.artifacts import sha256_of
from shared.datasets import mapped
from shared.db import session_scope
from shared.models import Dataset, Job
from shared.settings import Settings
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


def _dataset(settings: Settings, weights: bool) -> str:
    rng = np.random.default_rng(3)
    arrays: dict[str, Any] = {
        "x_train": rng.integers(0, 255, (600, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 600, dtype=np.uint8),
        "x_test": rng.integers(0, 255, (100, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 100, dtype=np.uint8),
    }
    if weights:
        arrays["sample_weight"] = rng.uniform(0.5, 2.0, 600)
    dataset_id = "d" * 31 + ("e" if weights else "f")
    settings.datasets_dir.mkdir(parents=True, exist_ok=True)
    np.savez(settings.datasets_dir / f"{dataset_id}.npz", **arrays)
    return dataset_id


def _register(settings: Settings, dataset_id: str, job_id: str) -> None:
    """The dataset's row, the job's owner's (a job trains only on a dataset that exists)."""
    path = settings.datasets_dir / f"{dataset_id}.npz"
    with session_scope(settings.database_url) as s:
        job = s.get(Job, job_id)
        assert job is not None
        s.merge(Dataset(id=dataset_id, owner_id=job.owner_id, name="streamed", path=str(path),
                        size_bytes=path.stat().st_size, sha256=sha256_of(path), arrays={},
                        n_train=600, n_test=100))  # fmt: skip


@pytest.mark.parametrize(
    ("fit", "weights"),
    [
        pytest.param({"validation_split": 0.2}, False, id="validation_split"),
        pytest.param({"validation_data": "test", "sample_weight": "sample_weight"}, True,
                     id="test-as-validation-weighted"),
    ],
)  # fmt: skip
def test_a_streamed_dataset_trains_as_the_same_one_in_memory(
    wsettings: Settings, fit: dict[str, Any], weights: bool
) -> None:
    dataset_id = _dataset(wsettings, weights)
    runs = []
    for threshold in (10**12, 0):  # in memory, then read from disk by rows
        settings = wsettings.model_copy(update={"dataset_stream_bytes": threshold})
        spec = quickstart(epochs=2, batch_size=64, shuffle=False, **fit)
        spec["fit"].pop("validation_split", None) if "validation_data" in fit else None
        spec["dataset"] = {"id": dataset_id, "scale": 255.0}
        spec["seed"] = 7
        job_id = _job(settings, spec)
        _register(settings, dataset_id, job_id)
        run_job(settings, job_id)
        job = _get(settings, job_id)
        assert job.status == "succeeded", job.error
        runs.append(([e.metrics for e in job.epochs], job.test_metrics))
    assert list(mapped.folder(wsettings).glob(f"{dataset_id}-*/x_train.npy"))  # extracted
    (memory, memory_test), (streamed, streamed_test) = runs
    assert len(memory) == len(streamed) == 2 and memory_test and streamed_test
    for a, b in zip(memory, streamed, strict=True):
        assert a.keys() == b.keys() and {"loss", "val_loss"} <= a.keys()
        np.testing.assert_allclose([a[k] for k in a], [b[k] for k in a], rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        [memory_test[k] for k in memory_test],
        [streamed_test[k] for k in memory_test],
        rtol=0,
        atol=1e-6,
    )


def test_the_extracted_datasets_stay_within_the_cache_size(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, cache_mb=1)  # each dataset below extracts to 0.6 MB
    rng = np.random.default_rng(5)
    uploads = []
    for n in range(3):
        path = tmp_path / f"upload-{n}.npz"
        np.savez(path, x_train=rng.integers(0, 255, (800, 28, 28), dtype=np.uint8))
        uploads.append(path)
    first = mapped.arrays(settings, uploads[0])["x_train"]
    mapped.arrays(settings, uploads[1])
    kept = sorted(p.name for p in mapped.folder(settings).iterdir())
    assert kept == ["upload-1-" + str(uploads[1].stat().st_size)]  # the older one went
    assert np.asarray(first[100:110]).shape == (10, 28, 28)  # a job reading it still can
    again = mapped.arrays(settings, uploads[0])["x_train"]  # extracted again when asked for
    assert np.array_equal(np.asarray(again), np.load(uploads[0])["x_train"])
    assert len(list(mapped.folder(settings).iterdir())) == 1
