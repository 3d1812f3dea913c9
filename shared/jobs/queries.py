"""Jobs as users see them: submit, look up (own jobs only), list, and their JSON form."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from shared.errors import NotFound
from shared.jobs.events import STATUS, add_event
from shared.ml import submit_check
from shared.models import Job, JobStatus, Role, User, utcnow
from shared.settings import Settings
from shared.spec.job import JobSpec


def create_job(session: Session, owner: User, spec: JobSpec, settings: Settings) -> Job:
    """Record a queued job for a validated spec (the caller commits, then sends it)."""
    submit_check.check(session, owner, spec, settings)  # refuses a spec that cannot train
    job = Job(
        owner_id=owner.id,
        name=spec.name or f"{spec.dataset.label} job",
        spec=spec.model_dump(mode="json"),
        status=JobStatus.queued,
        epochs_total=spec.fit.epochs,
        priority=spec.priority,
    )
    session.add(job)
    session.flush()
    add_event(session, job.id, STATUS, {"status": "queued"})
    return job


def get_job(
    session: Session, owner: User, job_id: str, *, history: bool = True, artifacts: bool = False
) -> Job:
    """The caller's job by id; another user's job is reported as not found."""
    return get_job_for(session, owner, job_id, history=history, artifacts=artifacts)


def get_job_for(
    session: Session,
    user: User,
    job_id: str,
    *,
    admin_ok: bool = False,
    history: bool = True,
    artifacts: bool = False,
) -> Job:
    """A job the user may act on: their own, or anyone's for an administrator when admin_ok.

    Everything else, whether it exists or not, is NotFound: a 403 would confirm it exists.
    """
    query = select(Job).where(Job.id == job_id)
    if not (admin_ok and user.role == Role.admin and not user.disabled):
        query = query.where(Job.owner_id == user.id)
    if history:
        query = query.options(selectinload(Job.epochs), selectinload(Job.artifacts))
    elif artifacts:  # only the model files (predict, download): in the same query
        query = query.options(joinedload(Job.artifacts))
    job = session.execute(query).unique().scalar_one_or_none()
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    return job


def list_jobs(
    session: Session,
    owner: User,
    *,
    page: int,
    per_page: int,
    status: JobStatus | None,
    everyone: bool = False,
) -> tuple[list[Job], int]:
    """The caller's jobs (every user's with everyone=True), newest first, one page, and a total."""
    where: list[Any] = [] if everyone else [Job.owner_id == owner.id]
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


def progress(job: Progressing, now: datetime | None = None) -> dict[str, Any]:
    """Epoch k of n, percent done, and an ETA from the mean time of the epochs this attempt has
    trained (a resumed job counts from its resume, not the epochs an earlier worker trained). A
    job that succeeded before its last epoch (a callback such as EarlyStopping ended it) is
    done: 100 %."""
    now = now or utcnow()
    done, total = job.epochs_done, job.epochs_total
    percent = round(100.0 * done / total, 1) if total else 0.0
    stopped_early = job.status == JobStatus.succeeded and done < total
    if stopped_early:
        percent = 100.0
    eta_seconds: float | None = None
    trained_here = done - (job.first_epoch - 1 if job.first_epoch else 0)
    if job.status == JobStatus.running and trained_here > 0 and job.started_at is not None:
        per_epoch = (now - job.started_at).total_seconds() / trained_here
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
        "text": f"stopped early after epoch {done} of {total}"
        if stopped_early
        else f"epoch {current} of {total}",
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


def owner_names(session: Session, jobs: list[Job]) -> dict[int, str]:
    """The names of the users who own these jobs, by user id."""
    ids = {job.owner_id for job in jobs}
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.name).where(User.id.in_(ids)))
    return {user_id: name for user_id, name in rows}
