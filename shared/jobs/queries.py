"""Jobs as users see them: submit, look up (own jobs only) and list; web.responses answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from shared.errors import InvalidSpec, NotFound
from shared.jobs.events import STATUS, add_event
from shared.ml import submit_check
from shared.models import Job, JobKind, JobStatus, Role, User
from shared.settings import Settings
from shared.spec import inline
from shared.spec.job import JobSpec


def create_job(session: Session, owner: User, spec: JobSpec, settings: Settings) -> Job:
    """Record a queued job for a validated spec (the caller commits, then sends it)."""
    stored = spec.model_dump(mode="json")
    _check_inline(stored, settings.max_inline_values)
    submit_check.check(session, owner, spec, settings)  # refuses a spec that cannot train
    job = Job(
        owner_id=owner.id,
        name=spec.name or f"{spec.dataset.label} job",
        spec=stored,
        status=JobStatus.queued,
        epochs_total=spec.fit.epochs,
        priority=spec.priority,
    )
    session.add(job)
    session.flush()
    add_event(session, job.id, STATUS, {"status": "queued"})
    return job


def _check_inline(stored: dict[str, Any], limit: int) -> None:
    """Inline arrays are for a little data: more is an upload, not part of the job row."""
    held = inline.count(stored, stop=limit)
    if held > limit:
        raise InvalidSpec(
            f"fit: the inline arrays (sample_weight, validation_data) hold more than {limit} "
            "numbers, the most a spec may carry; upload the data as a dataset "
            "(POST /api/v1/datasets) and name it in validation_data.dataset, or give "
            "sample_weight as the name of an array of an uploaded dataset",
            details={"errors": [{"field": "fit", "message": f"more than {limit} inline numbers; "
                                 "upload larger data as a dataset"}], "limit": limit},
        )  # fmt: skip


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
    query = select(Job).where(Job.id == job_id, Job.kind == JobKind.train)
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
    name: str | None = None,
    created: tuple[datetime | None, datetime | None] = (None, None),
    everyone: bool = False,
) -> tuple[list[Job], int]:
    """The caller's jobs (every user's with everyone=True), newest first, one page, and a total;
    only those whose name holds ``name`` (any case) and created from ``created[0]`` to before
    ``created[1]``, where given."""
    where: list[Any] = [Job.kind == JobKind.train]  # batch predictions are listed apart
    if not everyone:
        where.append(Job.owner_id == owner.id)
    if status is not None:
        where.append(Job.status == status)
    if name is not None:
        where.append(Job.name.icontains(name, autoescape=True))
    after, before = created
    if after is not None:
        where.append(Job.created_at >= after)
    if before is not None:
        where.append(Job.created_at < before)
    total = session.scalar(select(func.count()).select_from(Job).where(*where)) or 0
    jobs = session.scalars(
        select(Job)
        .where(*where)
        .order_by(Job.created_at.desc(), Job.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return list(jobs), total


def owner_names(session: Session, jobs: list[Job]) -> dict[int, str]:
    """The names of the users who own these jobs, by user id."""
    ids = {job.owner_id for job in jobs}
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.name).where(User.id.in_(ids)))
    return {user_id: name for user_id, name in rows}
