"""Response bodies, built through the models that the OpenAPI document publishes (web.schemas).

The core hands over ORM rows and computed values; this module turns them into those models, and
``body`` into what a route returns. URLs are made here, from the routes (``url_for``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from flask import url_for
from pydantic import BaseModel

from shared import models as orm
from shared.jobs import provenance
from shared.models import JobStatus, utcnow
from shared.spec import inline
from shared.sweeps import service
from web import schemas

if TYPE_CHECKING:
    from shared.jobs.dispatch import QueuePlace
    from shared.ml.serving import Head


_P = TypeVar("_P", bound=schemas.HeadPrediction)


def body(model: BaseModel) -> dict[str, Any]:
    """A model as the JSON object a route returns: by alias, the optional fields it was not
    given left out."""
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)


class Progressing(Protocol):
    """What a job's progress is computed from (a Job, or a copy of these fields)."""

    @property
    def status(self) -> JobStatus: ...
    @property
    def epochs_done(self) -> int: ...
    @property
    def epochs_total(self) -> int: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def first_epoch(self) -> int | None: ...


def progress_of(job: Progressing, now: datetime | None = None) -> schemas.Progress:
    """Epoch k of n, percent done, and an ETA from the mean time of the epochs this attempt has
    trained (a resumed job counts from its resume, not the epochs an earlier worker trained). A
    job that succeeded before its last epoch (a callback such as EarlyStopping ended it) is
    done: 100 %."""
    now = now or utcnow()
    done, total = job.epochs_done, job.epochs_total
    percent = round(100.0 * done / total, 1) if total else 0.0
    stopped_early = job.status == JobStatus.succeeded and done < total
    pruned = job.status == JobStatus.pruned
    if stopped_early or pruned:
        percent = 100.0
    eta_seconds: float | None = None
    trained_here = done - (job.first_epoch - 1 if job.first_epoch else 0)
    if job.status == JobStatus.running and trained_here > 0 and job.started_at is not None:
        per_epoch = (now - job.started_at).total_seconds() / trained_here
        eta_seconds = round(max(per_epoch * (total - done), 0.0), 1)
    elif job.status in (JobStatus.succeeded, JobStatus.pruned):
        eta_seconds = 0.0
    current = min(done + 1, total) if job.status == JobStatus.running else done
    return schemas.Progress(
        epoch=current,
        epochs_done=done,
        epochs=total,
        percent=percent,
        eta_seconds=eta_seconds,
        eta=now + timedelta(seconds=eta_seconds) if eta_seconds is not None else None,
        text=f"pruned after epoch {done} of {total}"
        if pruned
        else f"stopped early after epoch {done} of {total}"
        if stopped_early
        else f"epoch {current} of {total}",
    )


def progress(job: Progressing, now: datetime | None = None) -> dict[str, Any]:
    """The progress object of a job's response (the status cache recomputes it at each poll)."""
    return body(progress_of(job, now))


def _summary_fields(job: orm.Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "name": job.name,
        "status": job.status,
        "progress": progress_of(job),
        "error": job.error,
        "attempt": job.attempt,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "test_metrics": job.test_metrics,
        "sweep_id": job.sweep_id,
        "trial": job.trial,
    }


def _detail_fields(job: orm.Job) -> dict[str, Any]:
    files = None
    if job.artifacts:
        files = schemas.ModelFiles(
            formats=sorted(a.format for a in job.artifacts),
            download=url_for("jobs.download", job_id=job.id, format="keras"),
        )
    return _summary_fields(job) | {
        "spec": inline.shown(job.spec),  # inline arrays as their shape, never the numbers
        "history": [
            schemas.EpochRow(epoch=e.epoch, metrics=e.metrics, duration_s=round(e.duration_s, 4))
            for e in job.epochs
        ],
        "model": files,
        "provenance": provenance.shown(job),
    }


def job_summary(job: orm.Job) -> schemas.JobSummary:
    """A job as answered at submit."""
    return schemas.JobSummary(**_summary_fields(job))


def listed_job(job: orm.Job, owners: dict[int, str] | None = None) -> schemas.ListedJob:
    """A job in a page of jobs; with ``owners`` (an administrator's all=true), its owner."""
    if owners is None:
        return schemas.ListedJob(**_summary_fields(job))
    return schemas.ListedJob(**_summary_fields(job), owner=owners.get(job.owner_id))


def job_detail(job: orm.Job, place: QueuePlace | None) -> schemas.Job:
    """A job with its spec, history and model, and its place in the queue (None unless queued:
    ``shared.jobs.dispatch.queue_info``)."""
    queue = schemas.QueueInfo.model_validate(place) if place is not None else None
    return schemas.Job(**_detail_fields(job), queue=queue)


def cancelled_job(job: orm.Job) -> schemas.CancelledJob:
    """A job as answered to a cancel."""
    return schemas.CancelledJob(**_detail_fields(job), cancel_requested=True)


def _head(kind: type[_P], head: Head, i: int) -> _P:
    if head.logits is None or head.probabilities is None or head.classes is None:
        return kind(values=head.values[i].tolist())
    return kind.model_validate(
        {
            "logits": head.logits[i].tolist(),
            "probabilities": head.probabilities[i].tolist(),
            "class": int(head.classes[i]),
        }
    )


def predictions(job_id: str, heads: list[Head]) -> schemas.PredictResponse:
    """Per instance: each output's logits, softmax probabilities and class (a classifier head)
    or values; under each output's name when there are several."""
    rows = [
        _head(schemas.Prediction, heads[0], i)
        if len(heads) == 1
        else schemas.Prediction(
            outputs={h.name: _head(schemas.HeadPrediction, h, i) for h in heads}
        )
        for i in range(len(heads[0].values))
    ]
    return schemas.PredictResponse(job_id=job_id, predictions=rows)


def event(row: orm.Event) -> schemas.Event:
    """A job's event as streamed: its number, job, type and time, and what it records."""
    return schemas.Event.model_validate(
        {"id": row.seq, "job_id": row.job_id, "type": row.type, "created_at": row.created_at}
        | row.data
    )


def trial_event(row: orm.Event, trial: int) -> schemas.Event:
    """A trial's event as a sweep streams it: numbered across the sweep, with its trial."""
    return schemas.Event.model_validate(
        {"id": row.id, "job_id": row.job_id, "type": row.type, "created_at": row.created_at,
         "trial": trial} | row.data
    )  # fmt: skip


def dataset(row: orm.Dataset) -> schemas.Dataset:
    """An uploaded dataset."""
    return schemas.Dataset(
        id=row.id,
        name=row.name,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        arrays={k: schemas.ArrayInfo.model_validate(v) for k, v in row.arrays.items()},
        n_train=row.n_train,
        n_test=row.n_test,
        created_at=row.created_at,
    )


def _sweep_fields(row: orm.Sweep, jobs: list[orm.Job], counts: dict[str, int]) -> dict[str, Any]:
    sweep = service.parsed(row)
    best = service.best(sweep, jobs)
    return {
        "id": row.id,
        "name": row.name,
        "status": row.status,
        "trials": counts,
        "max_trials": row.max_trials,
        "max_concurrent": sweep.max_concurrent,
        "objective": schemas.SweepObjective(**sweep.objective.model_dump()),
        "sampler": sweep.sampler,
        "pruner": sweep.pruner.type,
        "best": schemas.SweepBest(**vars(best)) if best is not None else None,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
    }


def _counts(jobs: list[orm.Job]) -> dict[str, int]:
    out: dict[str, int] = {}
    for job in jobs:
        out[str(job.status)] = out.get(str(job.status), 0) + 1
    return out


def sweep_summary(row: orm.Sweep, jobs: list[orm.Job]) -> schemas.SweepSummary:
    """A sweep as answered at submit and listed (``jobs``: its trials with their epochs)."""
    return schemas.SweepSummary(**_sweep_fields(row, jobs, _counts(jobs)))


def sweep_detail(row: orm.Sweep, jobs: list[orm.Job]) -> schemas.Sweep:
    """A sweep with its spec, its space and its trials."""
    sweep = service.parsed(row)
    tried = [
        schemas.SweepTrial(
            trial=j.trial if j.trial is not None else 0,
            job_id=j.id,
            status=j.status,
            params=dict(j.trial_params or {}),
            value=service.objective_value(j, sweep.objective.metric),
            epochs_done=j.epochs_done,
            epochs=j.epochs_total,
        )
        for j in jobs
    ]
    return schemas.Sweep(
        **_sweep_fields(row, jobs, _counts(jobs)),
        spec=inline.shown(sweep.spec),
        space={path: p.model_dump(mode="json") for path, p in sweep.space.items()},
        tried=tried,
    )
