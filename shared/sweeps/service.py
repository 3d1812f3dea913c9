"""A sweep's transactions: create it with its first trials, ask for the next ones as trials
end, judge a trial's epochs for the pruner, cancel it, and say where it stands.

A trial is an ordinary job (``Job.sweep_id``, ``Job.trial``): quotas, fair share, priorities,
cancel, crash resume, events, TensorBoard, predict and download apply to it unchanged. The
next trial is asked for only while the sweep has fewer than ``max_concurrent`` trials queued or
running, so the sampler learns from the latest results. Trial numbers are unique per sweep in
the database: two processes advancing one sweep at once cannot both add a trial.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from shared.db import Sessions, transaction, unavailable
from shared.errors import NotFound
from shared.jobs import lifecycle
from shared.jobs.events import STATUS, add_event
from shared.jobs.quotas import queued_jobs
from shared.models import Job, JobStatus, Sweep, SweepStatus, User, utcnow
from shared.settings import Settings
from shared.spec.job import JobSpec
from shared.sweeps import engine
from shared.sweeps.engine import TrialRecord
from shared.sweeps.spec import SweepSpec, with_values
from shared.webhooks import outbox

log = logging.getLogger(__name__)
ACTIVE = (JobStatus.queued, JobStatus.running)


def parsed(row: Sweep) -> SweepSpec:
    """The sweep as submitted."""
    return SweepSpec.model_validate(row.body)


def objective_value(job: Job, metric: str) -> float | None:
    """The objective at the trial's last recorded epoch (None if it was not recorded)."""
    if not job.epochs:
        return None
    value = job.epochs[-1].metrics.get(metric)
    return float(value) if value is not None and math.isfinite(value) else None


def _state(job: Job, value: float | None) -> str:
    if job.status in ACTIVE:
        return "running"
    if job.status == JobStatus.succeeded:
        return "complete" if value is not None else "fail"
    if job.status == JobStatus.pruned:
        return "pruned"
    return "fail"


def record(job: Job, metric: str) -> TrialRecord:
    """A trial job as the engine sees it."""
    value = objective_value(job, metric)
    intermediate = {
        e.epoch: float(e.metrics[metric])
        for e in job.epochs
        if e.metrics.get(metric) is not None and math.isfinite(e.metrics[metric])
    }
    assert job.trial is not None
    return TrialRecord(
        number=job.trial,
        params=dict(job.trial_params or {}),
        state=_state(job, value),
        value=value,
        intermediate=intermediate,
        attrs=dict(job.trial_attrs or {}),
    )


def trials(session: Session, sweep_id: str) -> list[Job]:
    """The sweep's trial jobs with their epochs, by trial number."""
    return trials_by_sweep(session, [sweep_id])[sweep_id]


def trials_by_sweep(session: Session, sweep_ids: list[str]) -> dict[str, list[Job]]:
    """The trial jobs of several sweeps (with their epochs, by trial number), by sweep: in two
    queries however many sweeps there are."""
    found: dict[str, list[Job]] = {sweep_id: [] for sweep_id in sweep_ids}
    if not sweep_ids:
        return found
    jobs = session.scalars(
        select(Job)
        .where(Job.sweep_id.in_(sweep_ids))
        .options(selectinload(Job.epochs))
        .order_by(Job.sweep_id, Job.trial)
    )
    for job in jobs:
        found[str(job.sweep_id)].append(job)
    return found


def planned(sweep: SweepSpec) -> int:
    """How many trials the sweep runs: max_trials, or fewer when its grid is smaller."""
    size = engine.grid_size(sweep)
    return sweep.max_trials if size is None else min(sweep.max_trials, size)


def create(session: Session, owner: User, sweep: SweepSpec, settings: Settings) -> Sweep:
    """Record a sweep and its first trials in the caller's transaction (it commits)."""
    row = Sweep(
        owner_id=owner.id,
        name=sweep.name or "sweep",
        body=sweep.model_dump(mode="json"),
        status=SweepStatus.running,
        max_trials=planned(sweep),
    )
    session.add(row)
    session.flush()
    outbox.sweep_changed(session, row)  # sweep.running, before its first trials' events
    _ask_more(session, row, owner, settings)
    return row


def advance(db: Sessions, settings: Settings, sweep_id: str) -> list[str]:
    """Ask for the trials the sweep has room for, or end it once every trial has ended;
    returns the new trials' job ids (queued; the dispatcher hands them out)."""
    try:
        with transaction(db) as s:
            row = s.scalar(select(Sweep).where(Sweep.id == sweep_id).with_for_update())
            if row is None or row.status != SweepStatus.running:
                return []
            owner = s.get(User, row.owner_id)
            assert owner is not None
            return [j.id for j in _ask_more(s, row, owner, settings)]
    except IntegrityError:  # another process asked for the same trial first: it has them
        log.info("sweep_id=%s advanced meanwhile by another process", sweep_id)
        return []


def _ask_more(session: Session, row: Sweep, owner: User, settings: Settings) -> list[Job]:
    sweep = parsed(row)
    jobs = trials(session, row.id)
    active = sum(j.status in ACTIVE for j in jobs)
    room = 0
    if row.cancel_requested_at is None:
        room = min(
            sweep.max_concurrent - active, settings.max_queued_jobs - queued_jobs(session, owner)
        )
    made: list[Job] = []
    metric = sweep.objective.metric
    recorded = [record(j, metric) for j in jobs]
    while room > 0 and len(recorded) < row.max_trials:
        number = len(recorded)
        params, attrs = engine.ask(sweep, row.id, recorded)
        job = _new_trial(session, row, sweep, number, params, attrs)
        made.append(job)
        if job.status == JobStatus.failed:  # its values make no valid spec: ask again
            recorded.append(TrialRecord(number, params, "fail", attrs=attrs))
            continue
        recorded.append(TrialRecord(number, params, "running", attrs=attrs))
        active, room = active + 1, room - 1
    over = len(recorded) >= row.max_trials or row.cancel_requested_at is not None
    if active == 0 and over:
        _finish(session, row, sweep, jobs + made)
    return made


def _new_trial(
    session: Session,
    row: Sweep,
    sweep: SweepSpec,
    number: int,
    params: dict[str, Any],
    attrs: dict[str, Any],
) -> Job:
    values = with_values(sweep.spec, params)
    values["name"] = f"{row.name} #{number}"
    error = None
    try:
        spec = JobSpec.model_validate(values)
    except ValidationError as exc:  # recorded as a failed trial: the sampler learns of it
        first = exc.errors(include_url=False, include_input=False)[0]
        error = f"trial values {params} make no valid spec: {first['msg']}"
        spec = None
    job = Job(
        owner_id=row.owner_id,
        name=values["name"],
        spec=spec.model_dump(mode="json") if spec is not None else values,
        status=JobStatus.queued if spec is not None else JobStatus.failed,
        epochs_total=spec.fit.epochs if spec is not None else 0,
        priority=spec.priority if spec is not None else 0,
        sweep_id=row.id,
        trial=number,
        trial_params=params,
        trial_attrs=attrs,
        error=error,
        finished_at=None if spec is not None else utcnow(),
    )
    session.add(job)
    session.flush()
    add_event(
        session, job.id, STATUS, {"status": str(job.status)} | ({"error": error} if error else {})
    )
    return job


def _finish(session: Session, row: Sweep, sweep: SweepSpec, jobs: list[Job]) -> None:
    if row.cancel_requested_at is not None:
        row.status = SweepStatus.cancelled
    elif best(sweep, jobs) is not None:
        row.status = SweepStatus.succeeded
    else:
        row.status = SweepStatus.failed
    row.finished_at = utcnow()
    outbox.sweep_changed(session, row)  # its webhooks' event, in the same transaction
    log.info("sweep_id=%s state=%s trials=%d", row.id, row.status, len(jobs))


@dataclass(frozen=True)
class Best:
    """The best finished trial so far."""

    job_id: str
    trial: int
    params: dict[str, Any]
    value: float


def best(sweep: SweepSpec, jobs: list[Job]) -> Best | None:
    """The succeeded trial with the best objective (pruned trials did not finish)."""
    metric, sign = sweep.objective.metric, 1 if sweep.objective.direction == "minimize" else -1
    scored = [
        (value, j)
        for j in jobs
        if j.status == JobStatus.succeeded and (value := objective_value(j, metric)) is not None
    ]
    if not scored:
        return None
    value, job = min(scored, key=lambda vj: (sign * vj[0], vj[1].trial))
    assert job.trial is not None
    return Best(job.id, job.trial, dict(job.trial_params or {}), value)


def judge_epoch(db: Sessions, job_id: str, epoch: int) -> bool:
    """After a trial's epoch is recorded: whether its sweep's pruner stops it there. Any other
    job, or a sweep without a pruner, goes on."""
    with transaction(db) as s:
        job = s.get(Job, job_id)
        if job is None or job.sweep_id is None:
            return False
        row = s.get(Sweep, job.sweep_id)
        assert row is not None
        sweep = parsed(row)
        if sweep.pruner.type == "none":
            return False
        jobs = trials(s, row.id)
        current = next(j for j in jobs if j.id == job_id)
        records = [record(j, sweep.objective.metric) for j in jobs]
        mine = next(r for r in records if r.number == current.trial)
        mine.intermediate = {k: v for k, v in mine.intermediate.items() if k <= epoch}
        if epoch not in mine.intermediate:
            return False  # the objective is not in this epoch's logs: nothing to judge
        decision, attrs = engine.should_prune(sweep, records, mine)
        current.trial_attrs = attrs
        return decision


def cancel(session: Session, row: Sweep) -> None:
    """Stop a sweep in the caller's transaction: no more trials; queued ones cancelled at once,
    running ones asked to stop after their batch. It ends once they have."""
    if row.status != SweepStatus.running:
        return
    row.cancel_requested_at = row.cancel_requested_at or utcnow()
    for job in session.scalars(select(Job).where(Job.sweep_id == row.id, Job.status.in_(ACTIVE))):
        lifecycle.request_cancel(session, job.id)
    jobs = trials(session, row.id)
    if not any(j.status in ACTIVE for j in jobs):
        _finish(session, row, parsed(row), jobs)


def running_sweeps(db: Sessions) -> list[str]:
    """The ids of the sweeps that are not over."""
    with transaction(db) as s:
        return list(s.scalars(select(Sweep.id).where(Sweep.status == SweepStatus.running)))


def advance_all(db: Sessions, settings: Settings) -> list[str]:
    """Advance every running sweep (the periodic round: nothing waits for a lost wake-up);
    the job ids of the trials asked for."""
    asked: list[str] = []
    for sweep_id in running_sweeps(db):
        try:
            asked += advance(db, settings, sweep_id)
        except Exception as exc:
            if unavailable(exc):
                raise
            log.exception("sweep_id=%s could not be advanced", sweep_id)
    return asked


def get_sweep(session: Session, owner: User, sweep_id: str) -> Sweep:
    """The caller's sweep; another user's is not found."""
    row = session.scalar(select(Sweep).where(Sweep.id == sweep_id, Sweep.owner_id == owner.id))
    if row is None:
        raise NotFound(f"no sweep {sweep_id!r}")
    return row


def list_sweeps(session: Session, owner: User) -> list[Sweep]:
    """The caller's sweeps, newest first."""
    return list(
        session.scalars(
            select(Sweep)
            .where(Sweep.owner_id == owner.id)
            .order_by(Sweep.created_at.desc(), Sweep.id.desc())
            .limit(1000)
        )
    )
