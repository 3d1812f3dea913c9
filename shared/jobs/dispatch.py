"""Fair-share dispatch: queued jobs wait in the database and go to the workers in turn by user.

A queued job is *waiting* until the dispatcher hands it to the broker (``sent_at`` set). A job
takes a worker slot from then until it ends. When slots are free, the next job goes to the user
served longest ago (never served first), so a user with one job waits for at most one job of
each other user, however many they queued; within a user, higher priority first, then oldest.
No user has more than ``max_running_per_user`` jobs holding slots at once.

The slots are those the live workers announce (``shared.workers``), unless
``TRAINQ_WORKER_SLOTS`` fixes a total. Against live workers, each job goes to one worker's own
queue, chosen here: one with a free slot that owns as many GPUs as the job asks for (the
fewest such GPUs first, so that GPU slots stay free for GPU jobs), and the row says which
(``sent_to``); a job no free slot can take waits, and the jobs after it go ahead.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypedDict

import redis
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from shared.db import Sessions, transaction
from shared.models import Job, JobStatus, utcnow
from shared.settings import Settings
from shared.workers import Worker, live, queue_of

log = logging.getLogger(__name__)
NEVER = datetime.min.replace(tzinfo=UTC)
# Publish a job (its id), to the shared queue or to the queue given; False if the broker is down.
Publish = Callable[..., bool]


@dataclass(frozen=True)
class Waiting:
    """A queued job not yet handed to the broker."""

    id: str
    owner_id: int
    created_at: datetime
    gpus: int = 0


@dataclass
class Snapshot:
    """What the dispatcher decides from."""

    waiting: list[Waiting]  # in each user's own order: priority, then age
    holding: Counter[int]  # slots held per user (running, or sent and not yet started)
    last_served: dict[int, datetime]
    per_worker: Counter[str] = field(default_factory=Counter)  # slots held, by live worker name

    @property
    def busy(self) -> int:
        """Slots held on all workers."""
        return sum(self.holding.values())


def snapshot(session: Session) -> Snapshot:
    """Read the queue's state in one transaction."""
    holds = or_(
        Job.status == JobStatus.running,
        (Job.status == JobStatus.queued) & Job.sent_at.is_not(None),
    )
    per_owner = select(Job.owner_id, func.count()).where(holds).group_by(Job.owner_id)
    holding: Counter[int] = Counter({o: n for o, n in session.execute(per_owner)})
    by_worker = select(Job.sent_to, func.count()).where(holds, Job.sent_to.is_not(None))
    per_worker: Counter[str] = Counter(
        {w: n for w, n in session.execute(by_worker.group_by(Job.sent_to)) if w is not None}
    )
    served = (
        select(Job.owner_id, func.max(Job.sent_at))
        .where(Job.sent_at.is_not(None))
        .group_by(Job.owner_id)
    )
    last_served = {o: t for o, t in session.execute(served) if t is not None}
    rows = session.execute(
        select(Job.id, Job.owner_id, Job.created_at, Job.gpus)
        .where(Job.status == JobStatus.queued, Job.sent_at.is_(None))
        .order_by(Job.priority.desc(), Job.created_at, Job.id)
    )
    waiting = [Waiting(i, o, c, g) for i, o, c, g in rows]
    return Snapshot(waiting, holding, last_served, per_worker)


def place(gpus: int, workers: list[Worker], held: Counter[str]) -> Worker | None:
    """The worker a job asking for ``gpus`` goes to: a free slot with that many GPUs, the
    fewest such GPUs first, then the most free slots; None if no free slot has them."""
    fits = [w for w in workers if w.gpus_per_slot >= gpus and held[w.name] < w.slots]
    return min(fits, key=lambda w: (w.gpus_per_slot, held[w.name] - w.slots, w.name), default=None)


def turn_order(snap: Snapshot, per_user: int | None, limit: int | None = None) -> list[Waiting]:
    """The order waiting jobs start in: users in turn, least recently served first."""
    queues: dict[int, deque[Waiting]] = defaultdict(deque)
    for job in snap.waiting:
        queues[job.owner_id].append(job)
    holding = Counter(snap.holding)
    turns: dict[int, int] = {}  # users served in this plan, by turn: after every real time

    def served(user: int) -> tuple[int, datetime, int]:
        if user in turns:
            return (1, NEVER, turns[user])
        return (0, snap.last_served.get(user, NEVER), 0)

    order: list[Waiting] = []
    while queues and (limit is None or len(order) < limit):
        eligible = [u for u in queues if per_user is None or holding[u] < per_user]
        if not eligible:
            break
        user = min(eligible, key=lambda u: (served(u), queues[u][0].created_at, u))
        order.append(queues[user].popleft())
        if not queues[user]:
            del queues[user]
        holding[user] += 1
        turns[user] = len(order)
    return order


def dispatch(db: Sessions, settings: Settings, publish: Publish) -> list[str]:
    """Hand as many waiting jobs to the broker as there are free slots; returns their ids."""
    try:
        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2)
        lock = client.lock("trainq:dispatch", timeout=60, blocking_timeout=10)
        if not lock.acquire():
            log.warning("dispatch: lock busy; the next round will hand out free slots")
            return []
    except redis.RedisError:
        log.warning("dispatch: broker unreachable; jobs stay queued")
        return []
    try:
        return _dispatch_locked(db, settings, publish, client)
    finally:
        with contextlib.suppress(redis.RedisError):
            lock.release()


def _plan(
    snap: Snapshot, settings: Settings, workers: list[Worker] | None
) -> list[tuple[Waiting, str | None]]:
    """The jobs to send now, each with the worker it goes to (None: the shared queue)."""
    if workers is None:  # a fixed total of slots: any worker takes any job
        free = settings.worker_slots - snap.busy
        order = turn_order(snap, settings.max_running_per_user, limit=max(free, 0))
        return [(job, None) for job in order]
    held = Counter(snap.per_worker)
    free = sum(max(w.slots - held[w.name], 0) for w in workers)
    plan: list[tuple[Waiting, str | None]] = []
    for job in turn_order(snap, settings.max_running_per_user) if free else []:
        worker = place(job.gpus, workers, held)
        if worker is None:
            continue  # no free slot has its GPUs: it waits, and the next job may go ahead
        held[worker.name] += 1
        plan.append((job, worker.name))
        if len(plan) == free:
            break
    return plan


def _dispatch_locked(
    db: Sessions, settings: Settings, publish: Publish, client: redis.Redis
) -> list[str]:
    with transaction(db) as session:
        snap = snapshot(session)
    if not snap.waiting:
        return []
    try:
        workers = None if settings.worker_slots else live(client)
    except redis.RedisError:
        log.warning("dispatch: broker unreachable; jobs stay queued")
        return []
    sent: list[str] = []
    for job, worker in _plan(snap, settings, workers):
        with transaction(db) as session:
            taken = session.execute(
                update(Job)
                .where(Job.id == job.id, Job.status == JobStatus.queued, Job.sent_at.is_(None))
                .values(sent_at=utcnow(), sent_to=worker)
            )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            continue  # cancelled meanwhile
        if not (publish(job.id) if worker is None else publish(job.id, queue_of(worker))):
            _unsend(db, [job.id])
            break
        sent.append(job.id)
        log.info(
            "job_id=%s state=queued dispatched owner=%s worker=%s gpus=%d",
            job.id, job.owner_id, worker or "any", job.gpus,
        )  # fmt: skip
    return sent


def _unsend(db: Sessions, ids: Iterable[str]) -> None:
    with transaction(db) as session:
        session.execute(update(Job).where(Job.id.in_(list(ids))).values(sent_at=None, sent_to=None))


def unsend_placed(db: Sessions, job_id: str) -> bool:
    """Put a job sent to one worker's queue, and lost there, back among the waiting jobs, for
    the dispatcher to place again (among the workers live now); False for one sent to the
    shared queue (it is sent there again)."""
    with transaction(db) as session:
        done = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.queued, Job.sent_to.is_not(None))
            .values(sent_at=None, sent_to=None)
        )
    return bool(done.rowcount == 1)  # type: ignore[attr-defined]


class QueuePlace(TypedDict):
    """Where a queued job stands: how many jobs start before it, and why it waits."""

    position: int
    reason: str


def _live_workers(settings: Settings) -> list[Worker] | None:
    """The live workers; None when a fixed total of slots is set."""
    if settings.worker_slots:
        return None
    try:
        return live(redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2))
    except redis.RedisError:
        return []


def queue_info(session: Session, settings: Settings, job: Job) -> QueuePlace | None:
    """For a queued job: how many jobs start before it, and why it is waiting."""
    if job.status != JobStatus.queued:
        return None
    if job.sent_at is not None:
        return {"position": 0, "reason": "handed to a worker; starting as soon as it is free"}
    snap = snapshot(session)
    order = [w.id for w in turn_order(snap, None)]
    sent_not_started = session.scalar(
        select(func.count()).where(Job.status == JobStatus.queued, Job.sent_at.is_not(None))
    )
    position = (sent_not_started or 0) + (order.index(job.id) if job.id in order else 0)
    workers = _live_workers(settings)
    slots = settings.worker_slots if workers is None else sum(w.slots for w in workers)
    per_user = settings.max_running_per_user
    most_gpus = max((w.gpus_per_slot for w in workers or []), default=0)
    if snap.holding[job.owner_id] >= per_user:
        reason = f"your limit of {per_user} running jobs is reached"
    elif not slots:
        reason = "no worker is running"
    elif workers is not None and job.gpus > most_gpus:
        reason = (
            f"it asks for {job.gpus} GPUs and no running worker has a slot with that many "
            f"(the most: {most_gpus})"
        )
    elif workers is not None and job.gpus and place(job.gpus, workers, snap.per_worker) is None:
        reason = f"all worker slots with {job.gpus} GPUs are busy"
    elif snap.busy >= slots:
        reason = f"all {slots} worker slots are busy"
    elif position:
        reason = f"{position} jobs start before it"
    else:
        reason = "starting"
    return {"position": position, "reason": reason}
