"""Jobs as users see them: submit, look up (own jobs only), list, and their JSON form."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from shared import submit_check
from shared.errors import NotFound
from shared.models import Job, JobStatus, User, utcnow
from shared.settings import Settings
from shared.spec import JobSpec


def create_job(session: Session, owner: User, spec: JobSpec, settings: Settings) -> Job:
    """Record a queued job for a validated spec (the caller commits, then sends it)."""
    submit_check.check(session, owner, spec, settings)  # refuses a spec that cannot train
    job = Job(
        owner_id=owner.id,
        name=spec.name or f"{spec.dataset.label} job",
        spec=spec.model_dump(mode="json"),
        status=JobStatus.queued,
        epochs_total=spec.fit.epochs,
    )
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, owner: User, job_id: str, *, history: bool = True) -> Job:
    """The caller's job by id; another user's job is reported as not found."""
    query = select(Job).where(Job.id == job_id, Job.owner_id == owner.id)
    if history:
        query = query.options(selectinload(Job.epochs), selectinload(Job.artifacts))
    job = session.scalar(query)
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    return job


def list_jobs(
    session: Session, owner: User, *, page: int, per_page: int, status: JobStatus | None
) -> tuple[list[Job], int]:
    """The caller's jobs, newest first, one page of them, and how many there are in all."""
    where = [Job.owner_id == owner.id]
    if status is not None:
        where.append(Job.status == status)
    total = session.scalar(select(func.count()).select_from(Job).where(*where)) or 0
    jobs = session.scalars(
        select(Job)
        .where(*where)
        .order_by(Job.created_at.desc(), Job.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return list(jobs), total


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def progress(job: Job, now: datetime | None = None) -> dict[str, Any]:
    """Epoch k of n, percent done, and an ETA from the mean epoch time so far."""
    now = now or utcnow()
    done, total = job.epochs_done, job.epochs_total
    percent = round(100.0 * done / total, 1) if total else 0.0
    eta_seconds: float | None = None
    if job.status == JobStatus.running and done and job.started_at is not None:
        per_epoch = (now - job.started_at).total_seconds() / done
        eta_seconds = round(max(per_epoch * (total - done), 0.0), 1)
    elif job.status == JobStatus.succeeded:
        eta_seconds = 0.0
    current = min(done + 1, total) if job.status == JobStatus.running else done
    return {
        "epoch": current,
        "epochs_done": done,
        "epochs": total,
        "percent": percent,
        "eta_seconds": eta_seconds,
        "eta": _iso(now + timedelta(seconds=eta_seconds)) if eta_seconds is not None else None,
        "text": f"epoch {current} of {total}",
    }


def job_to_dict(job: Job, *, history: bool = True) -> dict[str, Any]:
    """The JSON form of a job."""
    data: dict[str, Any] = {
        "id": job.id,
        "name": job.name,
        "status": str(job.status),
        "progress": progress(job),
        "error": job.error,
        "attempt": job.attempt,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "test_metrics": job.test_metrics,
    }
    if history:
        data["spec"] = job.spec
        data["history"] = [
            {"epoch": e.epoch, "metrics": e.metrics, "duration_s": round(e.duration_s, 4)}
            for e in job.epochs
        ]
        data["model"] = (
            {
                "formats": sorted(a.format for a in job.artifacts),
                "download": f"/api/v1/jobs/{job.id}/model?format=keras",
            }
            if job.artifacts
            else None
        )
    return data
