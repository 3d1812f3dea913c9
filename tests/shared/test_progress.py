"""A job's progress as its owner reads it: epoch k of n, percent, time left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.models import JobStatus, utcnow
from web.responses import progress


@dataclass
class _Job:
    status: JobStatus
    epochs_done: int
    epochs_total: int
    started_at: datetime | None
    first_epoch: int | None = None


NOW = utcnow()
TEN_SECONDS_AGO = NOW - timedelta(seconds=10)


def test_time_left_comes_from_the_epochs_trained_so_far() -> None:
    job = _Job(JobStatus.running, epochs_done=2, epochs_total=10, started_at=TEN_SECONDS_AGO)
    shown = progress(job, NOW)
    assert shown["eta_seconds"] == 40.0  # 5 s an epoch, 8 to go
    assert (shown["epoch"], shown["percent"], shown["text"]) == (3, 20.0, "epoch 3 of 10")


def test_a_resumed_job_counts_only_the_epochs_trained_since_it_resumed() -> None:
    # Another worker trained epochs 1-3; this one resumed at epoch 4 ten seconds ago and has
    # trained 4 and 5 since: 5 s an epoch, 5 to go.
    job = _Job(JobStatus.running, 5, 10, TEN_SECONDS_AGO, first_epoch=4)
    assert progress(job, NOW)["eta_seconds"] == 25.0
    just_resumed = _Job(JobStatus.running, 3, 10, TEN_SECONDS_AGO, first_epoch=4)
    assert progress(just_resumed, NOW)["eta_seconds"] is None  # no epoch to time yet
    assert progress(just_resumed, NOW)["text"] == "epoch 4 of 10"


def test_a_finished_job_has_no_time_left() -> None:
    done = progress(_Job(JobStatus.succeeded, 10, 10, TEN_SECONDS_AGO), NOW)
    assert (done["eta_seconds"], done["percent"], done["text"]) == (0.0, 100.0, "epoch 10 of 10")
    early = progress(_Job(JobStatus.succeeded, 4, 10, TEN_SECONDS_AGO), NOW)
    assert (early["percent"], early["text"]) == (100.0, "stopped early after epoch 4 of 10")
    cancelled = progress(_Job(JobStatus.cancelled, 4, 10, TEN_SECONDS_AGO), NOW)
    assert (cancelled["eta_seconds"], cancelled["percent"]) == (None, 40.0)
