"""A training process keeps the datasets it used (preprocessed, their validation and test rows
batched) for the next job on the same data; a job trains the same with them as without."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.commands.database import migrate
from shared.datasets.builtin import Splits
from shared.db import session_scope
from shared.ml import kept_data
from shared.models import Job, JobStatus
from shared.settings import Settings
from tests.conftest import make_user
from tests.specs import quickstart
from worker.training import run_job

pytestmark = pytest.mark.timeout(300)


def _settings(tmp: Path, **extra: Any) -> Settings:
    return Settings(
        var_dir=tmp, database_url=f"sqlite:///{tmp / 'db.sqlite'}",
        redis_url="redis://127.0.0.1:1/0", artifacts=tmp / "artifacts", **extra,
    )  # fmt: skip


def _train(settings: Settings, owner: int, spec: dict[str, Any]) -> tuple[list[Any], Any]:
    with session_scope(settings.database_url) as s:
        job = Job(owner_id=owner, name="j", spec=spec, epochs_total=spec["fit"]["epochs"],
                  status=JobStatus.queued)  # fmt: skip
        s.add(job)
        s.flush()
        job_id = job.id
    run_job(settings, job_id)
    with session_scope(settings.database_url) as s:
        done = s.get_one(Job, job_id)
        assert done.status == JobStatus.succeeded, done.error
        return [(e.epoch, e.metrics) for e in done.epochs], done.test_metrics


@pytest.mark.parametrize(
    "fit",
    [
        {"validation_split": 0.1},
        {"validation_split": 0.0, "validation_data": "test", "validation_batch_size": 500},
        {"validation_split": 0.0, "validation_data": "test", "workers": 2},
        {"validation_split": 0.2, "workers": 2},
    ],
    ids=["validation_split", "validation_data_test", "pydataset_test", "pydataset_split"],
)
def test_a_job_on_kept_data_trains_exactly_as_one_that_loaded_it(
    tmp_path: Path, fit: dict[str, Any]
) -> None:
    settings = _settings(tmp_path)
    migrate(settings.database_url)
    owner, _ = make_user(settings.database_url, "alice")
    spec = quickstart(epochs=2, **fit)
    spec["seed"] = 7
    kept_data.clear()
    first = _train(settings, owner, spec)  # loads mnist-sample, builds the batches, keeps them
    (kept,) = kept_data._CACHE.entries.values()
    assert kept.batches, "the validation and test rows are kept in batches"
    again = _train(settings, owner, spec)  # from what the first job kept
    assert list(kept_data._CACHE.entries.values()) == [kept]
    kept_data.clear()
    fresh = _train(settings.model_copy(update={"data_cache_mb": 0}), owner, spec)
    assert kept_data._CACHE.entries == {}  # 0: nothing kept
    history, test_metrics = first
    assert {"val_loss", "val_accuracy"} <= set(history[-1][1])
    assert again == first
    assert fresh == first
    assert test_metrics is not None and test_metrics["accuracy"] > 0.5


def _splits(rows: int) -> Splits:
    return Splits(np.zeros((rows, 256), np.float32), np.zeros(rows, np.uint8), None, None)


def test_kept_datasets_stay_within_their_budget() -> None:
    kept_data.clear()
    loads: list[str] = []

    def get(name: str, rows: int) -> kept_data.Kept:
        def load() -> Splits:
            loads.append(name)
            return _splits(rows)

        # float32 inputs with a scale of 1 are used as they are: counted once
        return kept_data.get(name, 4, load, lambda x: x)

    mb = 1024  # 1,024 rows of 256 float32 inputs (and 1 KB of labels): 1 MB
    a = get("a", mb)
    get("b", mb)
    assert get("a", mb) is a and loads == ["a", "b"]  # kept: not loaded again
    get("c", 2 * mb)  # over 4 MB in all: b, the least recently used, goes
    assert list(kept_data._CACHE.entries) == ["a", "c"]
    big = get("big", 5 * mb)  # over the budget alone: used, not kept
    assert big.x_train.shape == (5 * mb, 256)
    assert list(kept_data._CACHE.entries) == ["a", "c"]  # nor does it push the others out
    get("b", mb)
    assert loads == ["a", "b", "c", "big", "b"]
    assert list(kept_data._CACHE.entries) == ["c", "b"]
    kept_data.clear()
