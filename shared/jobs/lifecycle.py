"""A job's state transitions, each one short transaction, safe against duplicate deliveries.

Each function that is a transaction of its own takes ``db``, trainq's sessionmaker
(``shared.db.sessions``); ``request_cancel`` is part of its caller's transaction and takes the
``Session``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from shared.db import Sessions, transaction
from shared.errors import Conflict
from shared.jobs.events import EPOCH, STATUS, add_event
from shared.models import FINISHED, Artifact, EpochRecord, Job, JobStatus, utcnow

STALE_AFTER = timedelta(seconds=90)
MAX_ATTEMPTS = 2
LOST = "its worker process was lost (killed, or out of memory)"
MAX_ERROR_CHARS = 4000


def clean_metrics(metrics: dict[str, Any]) -> dict[str, float | None]:
    """Metrics as JSON numbers; NaN and infinities (not valid JSON) become null."""
    out: dict[str, float | None] = {}
    for key, value in metrics.items():
        number = None if value is None else float(value)
        out[key] = number if number is not None and math.isfinite(number) else None
    return out


def start(
    db: Sessions,
    job_id: str,
    worker: str,
    *,
    stale_after: timedelta = STALE_AFTER,
    max_attempts: int = MAX_ATTEMPTS,
) -> bool:
    """Take a queued job (or one whose worker went silent) for this worker; False if not ours.

    Epochs an earlier attempt recorded are kept: the worker resumes from its checkpoint. A job
    somebody asked to cancel is never taken again: one whose worker was lost ends cancelled.
    """
    now = utcnow()
    with transaction(db) as s:
        if _cancel_lost(s, job_id, now - stale_after):
            return False
        taken = s.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.cancel_requested_at.is_(None),
                or_(
                    Job.status == JobStatus.queued,
                    (Job.status == JobStatus.running) & (Job.heartbeat_at < now - stale_after),
                ),
            )
            .values(
                status=JobStatus.running,
                attempt=Job.attempt + 1,
                worker=worker,
                started_at=now,
                heartbeat_at=now,
                first_epoch=None,
                error=None,
            )
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return False
        job = s.get(Job, job_id)
        assert job is not None
        if job.attempt > max_attempts:
            job.status = JobStatus.failed
            job.error = (
                f"gave up after {max_attempts} attempts: the worker process was lost each time "
                "(killed, or out of memory)"
            )
            job.finished_at = now
            add_event(s, job_id, STATUS, {"status": "failed", "error": job.error})
            return False
        data: dict[str, Any] = {"status": "running", "attempt": job.attempt}
        if job.attempt > 1:  # said where the job's events are followed, and in the worker's log
            data["reason"] = (
                f"attempt {job.attempt - 1} of {max_attempts}: {LOST}; trying again from its "
                "last finished epoch"
            )
        add_event(s, job_id, STATUS, data)
        return True


def _cancel_lost(session: Session, job_id: str, silent_since: Any) -> bool:
    """End cancelled a running job with a cancel request whose worker went silent."""
    done = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.status == JobStatus.running,
            Job.cancel_requested_at.is_not(None),
            Job.heartbeat_at < silent_since,
        )
        .values(status=JobStatus.cancelled, finished_at=utcnow(), worker=None)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        return False
    add_event(session, job_id, STATUS, {"status": "cancelled", "model": False, "reason": LOST})
    return True


def heartbeat(db: Sessions, job_id: str, worker: str) -> tuple[bool, bool]:
    """Tell the reconciler this job's worker is alive: (still ours, cancel requested)."""
    with transaction(db) as s:
        done = s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.running, Job.worker == worker)
            .values(heartbeat_at=utcnow())
        )
        ours = done.rowcount == 1  # type: ignore[attr-defined]
        return ours, ours and _cancel_requested(s, job_id)


def _cancel_requested(session: Session, job_id: str) -> bool:
    return session.scalar(select(Job.cancel_requested_at).where(Job.id == job_id)) is not None


def cancel_requested(db: Sessions, job_id: str) -> bool:
    """Whether somebody asked to cancel the job."""
    with transaction(db) as s:
        return _cancel_requested(s, job_id)


def record_epoch(
    db: Sessions, job_id: str, epoch: int, metrics: dict[str, Any], seconds: float
) -> None:
    """Store one finished epoch (1-based) and move the job's progress on; once per epoch,
    however often the same record is tried (a retry after a lost answer adds no event)."""
    metrics = clean_metrics(metrics)
    with transaction(db) as s:
        row = s.scalar(
            select(EpochRecord).where(EpochRecord.job_id == job_id, EpochRecord.epoch == epoch)
        )
        if row is None:
            s.add(EpochRecord(job_id=job_id, epoch=epoch, metrics=metrics, duration_s=seconds))
        elif row.metrics == metrics and row.duration_s == seconds:
            return  # this very record: a commit whose answer the outage lost, tried again
        else:  # an epoch retrained because its checkpoint was lost replaces its record
            row.metrics, row.duration_s, row.finished_at = metrics, seconds, utcnow()
        s.execute(
            update(Job).where(Job.id == job_id).values(epochs_done=epoch, heartbeat_at=utcnow())
        )
        add_event(s, job_id, EPOCH, {"epoch": epoch, "metrics": metrics, "duration_s": seconds})


def resumed(db: Sessions, job_id: str, first_epoch: int) -> int:
    """Note the epoch this attempt starts at; the number of epochs recorded before it."""
    with transaction(db) as s:
        job = s.get(Job, job_id)
        assert job is not None
        job.first_epoch = first_epoch
        return job.epochs_done


def hand_back(db: Sessions, job_id: str, worker: str) -> bool:
    """Return a running job to the queue (worker shutting down); it does not use up an attempt.

    A job somebody asked to cancel ends cancelled instead (``cancelled``)."""
    with transaction(db) as s:
        done = s.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.status == JobStatus.running,
                Job.worker == worker,
                Job.cancel_requested_at.is_(None),
            )
            .values(
                status=JobStatus.queued,
                worker=None,
                sent_at=None,
                attempt=Job.attempt - 1,
                heartbeat_at=None,
            )
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            return False
        add_event(s, job_id, STATUS, {"status": "queued", "reason": "its worker shut down"})
        return True


def cancelled(db: Sessions, job_id: str, files: dict[str, tuple[str, int, str]]) -> None:
    """End a running job cancelled, keeping the model of its last finished epoch if any."""
    with transaction(db) as s:
        job = s.get(Job, job_id)
        assert job is not None
        if job.status in FINISHED:
            return
        for fmt, (path, size, digest) in files.items():
            s.add(Artifact(job_id=job_id, format=fmt, path=path, size_bytes=size, sha256=digest))
        job.status = JobStatus.cancelled
        job.finished_at = utcnow()
        add_event(s, job_id, STATUS, {"status": "cancelled", "model": bool(files)})


def succeed(
    db: Sessions,
    job_id: str,
    test_metrics: dict[str, Any] | None,
    files: dict[str, tuple[str, int, str]],
    *,
    worker: str | None = None,
    pruned: bool = False,
) -> bool:
    """Mark the job succeeded (``pruned``: a sweep's pruner stopped it after an epoch) with its
    test metrics and model files (format -> path, size, sha), only if it is still running (on
    `worker`, when given). False if it is not: another worker took it over, or it ended."""
    where = [Job.id == job_id, Job.status == JobStatus.running]
    if worker is not None:
        where.append(Job.worker == worker)
    metrics = clean_metrics(test_metrics) if test_metrics is not None else None
    status = JobStatus.pruned if pruned else JobStatus.succeeded
    with transaction(db) as s:
        done = s.execute(
            update(Job)
            .where(*where)
            .values(status=status, test_metrics=metrics, finished_at=utcnow())
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            return False
        for fmt, (path, size, digest) in files.items():
            s.add(Artifact(job_id=job_id, format=fmt, path=path, size_bytes=size, sha256=digest))
        add_event(s, job_id, STATUS, {"status": str(status), "test_metrics": metrics})
        return True


def fail(db: Sessions, job_id: str, error: str, *, worker: str | None = None) -> None:
    """Mark the job failed with a reason a person can read (only if still that worker's)."""
    if len(error) > MAX_ERROR_CHARS:
        error = error[: MAX_ERROR_CHARS - 1] + "…"
    where = [Job.id == job_id, Job.status.not_in(FINISHED)]
    if worker is not None:
        where.append(Job.worker == worker)
    with transaction(db) as s:
        failed = s.execute(
            update(Job)
            .where(*where)
            .values(status=JobStatus.failed, error=error, finished_at=utcnow())
        )
        if failed.rowcount == 1:  # type: ignore[attr-defined]
            add_event(s, job_id, STATUS, {"status": "failed", "error": error})


def is_finished(db: Sessions, job_id: str) -> bool:
    """Whether the job has ended (succeeded, failed, cancelled or pruned)."""
    with transaction(db) as s:
        return s.scalar(select(Job.status).where(Job.id == job_id)) in FINISHED


def stale_running(db: Sessions, stale_after: timedelta = STALE_AFTER) -> list[str]:
    """Running jobs whose worker stopped sending heartbeats."""
    with transaction(db) as s:
        return list(
            s.scalars(
                select(Job.id).where(
                    Job.status == JobStatus.running, Job.heartbeat_at < utcnow() - stale_after
                )
            )
        )


def sent_not_started(db: Sessions, older_than: timedelta) -> list[str]:
    """Queued jobs handed to the broker longer ago than the given time and not started yet."""
    cutoff = utcnow() - older_than
    with transaction(db) as s:
        return list(
            s.scalars(select(Job.id).where(Job.status == JobStatus.queued, Job.sent_at < cutoff))
        )


def mark_sent(db: Sessions, job_id: str) -> None:
    """Remember when the job was last handed to the broker."""
    with transaction(db) as s:
        s.execute(update(Job).where(Job.id == job_id).values(sent_at=utcnow()))


def send(db: Sessions, job_id: str, publish: Callable[[str], bool]) -> bool:
    """Hand a job to the broker, then record when; False (nothing recorded) if it is down."""
    if not publish(job_id):
        return False
    mark_sent(db, job_id)
    return True


TRAIN_TASK = "trainq.train"


def requeue(db: Sessions, job_id: str, stale_after: timedelta = STALE_AFTER) -> bool:
    """Put a running job whose worker went silent back in the queue; one somebody asked to
    cancel ends cancelled instead (False: it is not back in the queue)."""
    with transaction(db) as s:
        if _cancel_lost(s, job_id, utcnow() - stale_after):
            return False
        done = s.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.status == JobStatus.running,
                Job.heartbeat_at < utcnow() - stale_after,
            )
            .values(status=JobStatus.queued, worker=None, sent_at=None)
        )
        if done.rowcount == 1:  # type: ignore[attr-defined]
            add_event(s, job_id, STATUS, {"status": "queued", "reason": "worker went silent"})
        return done.rowcount == 1  # type: ignore[attr-defined]


def request_cancel(session: Session, job_id: str, what: str = "job") -> JobStatus:
    """Cancel a queued job at once, or ask a running one to stop; Conflict (naming it as `what`)
    once it has ended.

    Returns the job's status afterwards: cancelled, or still running until its worker stops.
    """
    now = utcnow()
    done = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.queued)
        .values(status=JobStatus.cancelled, cancel_requested_at=now, finished_at=now)
    )
    if done.rowcount == 1:  # type: ignore[attr-defined]
        add_event(session, job_id, STATUS, {"status": "cancelled", "model": False})
        return JobStatus.cancelled
    done = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.running)
        .values(cancel_requested_at=func.coalesce(Job.cancel_requested_at, now))
    )
    if done.rowcount == 1:  # type: ignore[attr-defined]
        return JobStatus.running
    status = session.scalar(select(Job.status).where(Job.id == job_id))
    raise Conflict(
        f"{what} {job_id} is {status}: only a queued or running {what} can be cancelled",
        details={"status": str(status)},
    )
