"""A job's state transitions, each one short transaction, safe against duplicate deliveries."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update

from shared.db import session_scope
from shared.events import EPOCH, STATUS, add_event
from shared.models import FINISHED, Artifact, EpochRecord, Job, JobStatus, utcnow

STALE_AFTER = timedelta(seconds=90)
MAX_ATTEMPTS = 3
MAX_ERROR_CHARS = 4000


def _clean(metrics: dict[str, Any]) -> dict[str, float | None]:
    """Metrics as JSON numbers; NaN and infinities (not valid JSON) become null."""
    out: dict[str, float | None] = {}
    for key, value in metrics.items():
        number = float(value)
        out[key] = number if math.isfinite(number) else None
    return out


def start(url: str, job_id: str, worker: str) -> bool:
    """Take a queued job (or one whose worker went silent) for this worker; False if not ours."""
    now = utcnow()
    with session_scope(url) as s:
        taken = s.execute(
            update(Job)
            .where(
                Job.id == job_id,
                or_(
                    Job.status == JobStatus.queued,
                    (Job.status == JobStatus.running) & (Job.heartbeat_at < now - STALE_AFTER),
                ),
            )
            .values(
                status=JobStatus.running,
                attempt=Job.attempt + 1,
                worker=worker,
                started_at=now,
                heartbeat_at=now,
                error=None,
            )
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return False
        job = s.get(Job, job_id)
        assert job is not None
        if job.attempt > MAX_ATTEMPTS:
            job.status = JobStatus.failed
            job.error = f"gave up after {MAX_ATTEMPTS} attempts: the worker was lost each time"
            job.finished_at = now
            add_event(s, job_id, STATUS, {"status": "failed", "error": job.error})
            return False
        # A restarted attempt trains from the start: drop what an earlier attempt recorded.
        s.execute(delete(EpochRecord).where(EpochRecord.job_id == job_id))
        job.epochs_done = 0
        add_event(s, job_id, STATUS, {"status": "running", "attempt": job.attempt})
        return True


def heartbeat(url: str, job_id: str) -> None:
    """Tell the reconciler this job's worker is alive."""
    with session_scope(url) as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.running)
            .values(heartbeat_at=utcnow())
        )


def record_epoch(
    url: str, job_id: str, epoch: int, metrics: dict[str, Any], seconds: float
) -> None:
    """Store one finished epoch (1-based) and move the job's progress on."""
    with session_scope(url) as s:
        s.add(EpochRecord(job_id=job_id, epoch=epoch, metrics=_clean(metrics), duration_s=seconds))
        s.execute(
            update(Job).where(Job.id == job_id).values(epochs_done=epoch, heartbeat_at=utcnow())
        )
        add_event(
            s, job_id, EPOCH, {"epoch": epoch, "metrics": _clean(metrics), "duration_s": seconds}
        )


def succeed(
    url: str,
    job_id: str,
    test_metrics: dict[str, Any] | None,
    files: dict[str, tuple[str, int, str]],
) -> None:
    """Mark the job succeeded with its test metrics and model files (format -> path, size, sha)."""
    with session_scope(url) as s:
        job = s.get(Job, job_id)
        assert job is not None
        for fmt, (path, size, digest) in files.items():
            s.add(Artifact(job_id=job_id, format=fmt, path=path, size_bytes=size, sha256=digest))
        job.test_metrics = _clean(test_metrics) if test_metrics is not None else None
        job.status = JobStatus.succeeded
        job.finished_at = utcnow()
        add_event(s, job_id, STATUS, {"status": "succeeded", "test_metrics": job.test_metrics})


def fail(url: str, job_id: str, error: str) -> None:
    """Mark the job failed with a reason a person can read."""
    if len(error) > MAX_ERROR_CHARS:
        error = error[: MAX_ERROR_CHARS - 1] + "…"
    with session_scope(url) as s:
        failed = s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.not_in(FINISHED))
            .values(status=JobStatus.failed, error=error, finished_at=utcnow())
        )
        if failed.rowcount == 1:  # type: ignore[attr-defined]
            add_event(s, job_id, STATUS, {"status": "failed", "error": error})


def stale_running(url: str) -> list[str]:
    """Running jobs whose worker stopped sending heartbeats."""
    with session_scope(url) as s:
        return list(
            s.scalars(
                select(Job.id).where(
                    Job.status == JobStatus.running, Job.heartbeat_at < utcnow() - STALE_AFTER
                )
            )
        )


def unsent_queued(url: str, older_than: timedelta) -> list[str]:
    """Queued jobs last sent to the broker (or created) longer ago than the given time."""
    cutoff = utcnow() - older_than
    with session_scope(url) as s:
        return list(
            s.scalars(
                select(Job.id).where(
                    Job.status == JobStatus.queued,
                    or_(Job.sent_at.is_(None), Job.sent_at < cutoff),
                    Job.created_at < cutoff,
                )
            )
        )


def mark_sent(url: str, job_id: str) -> None:
    """Remember when the job was last handed to the broker."""
    with session_scope(url) as s:
        s.execute(update(Job).where(Job.id == job_id).values(sent_at=utcnow()))


TRAIN_TASK = "trainq.train"


def requeue(url: str, job_id: str) -> bool:
    """Put a running job whose worker went silent back in the queue."""
    with session_scope(url) as s:
        done = s.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.status == JobStatus.running,
                Job.heartbeat_at < utcnow() - STALE_AFTER,
            )
            .values(status=JobStatus.queued, worker=None, sent_at=None)
        )
        if done.rowcount == 1:  # type: ignore[attr-defined]
            add_event(s, job_id, STATUS, {"status": "queued", "reason": "worker went silent"})
        return done.rowcount == 1  # type: ignore[attr-defined]
