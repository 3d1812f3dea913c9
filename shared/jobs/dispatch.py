"""Fair-share dispatch: queued jobs wait in the database and go to the workers in turn by user.

A queued job is *waiting* until the dispatcher hands it to the broker (``sent_at`` set). A job
takes a worker slot from then until it ends. When slots are free, the next job goes to the user
served longest ago (never served first), so a user with one job waits for at most one job of
each other user, however many they queued; within a user, higher priority first, then oldest.
No user has more than ``max_running_per_user`` jobs holding slots at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypedDict

import redis
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from shared.db import Sessions, transaction
from shared.models import Job, JobStatus, utcnow
from shared.settings import Settings

log = logging.getLogger(__name__)
NEVER = datetime.min.replace(tzinfo=UTC)
Publish = Callable[[str], bool]


@dataclass(frozen=True)
class Waiting:
    """A queued job not yet handed to the broker."""

    id: str
    owner_id: int
    created_at: datetime


@dataclass
class Snapshot:
    """What the dispatcher decides from."""

    waiting: list[Waiting]  # in each user's own order: priority, then age
    holding: Counter[int]  # slots held per user (running, or sent and not yet started)
    last_served: dict[int, datetime]

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
    served = (
        select(Job.owner_id, func.max(Job.sent_at))
        .where(Job.sent_at.is_not(None))
        .group_by(Job.owner_id)
    )
    last_served = {o: t for o, t in session.execute(served) if t is not None}
    rows = session.execute(
        select(Job.id, Job.owner_id, Job.created_at)
        .where(Job.status == JobStatus.queued, Job.sent_at.is_(None))
        .order_by(Job.priority.desc(), Job.created_at, Job.id)
    )
    waiting = [Waiting(i, o, c) for i, o, c in rows]
    return Snapshot(waiting, holding, last_served)


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
        return _dispatch_locked(db, settings, publish)
    finally:
        with contextlib.suppress(redis.RedisError):
            lock.release()


def _dispatch_locked(db: Sessions, settings: Settings, publish: Publish) -> list[str]:
    with transaction(db) as session:
        snap = snapshot(session)
    free = settings.worker_slots - snap.busy
    if free <= 0 or not snap.waiting:
        return []
    chosen = turn_order(snap, settings.max_running_per_user, limit=free)
    sent: list[str] = []
    for job in chosen:
        with transaction(db) as session:
            taken = session.execute(
                update(Job)
                .where(Job.id == job.id, Job.status == JobStatus.queued, Job.sent_at.is_(None))
                .values(sent_at=utcnow())
            )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            continue  # cancelled meanwhile
        if not publish(job.id):
            _unsend(db, [job.id])
            break
        sent.append(job.id)
        log.info("job_id=%s state=queued dispatched owner=%s", job.id, job.owner_id)
    return sent


def _unsend(db: Sessions, ids: Iterable[str]) -> None:
    with transaction(db) as session:
        session.execute(update(Job).where(Job.id.in_(list(ids))).values(sent_at=None))


class QueuePlace(TypedDict):
    """Where a queued job stands: how many jobs start before it, and why it waits."""

    position: int
    reason: str


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
    slots, per_user = settings.worker_slots, settings.max_running_per_user
    if snap.holding[job.owner_id] >= per_user:
        reason = f"your limit of {per_user} running jobs is reached"
    elif snap.busy >= slots:
        reason = f"all {slots} worker slots are busy"
    elif position:
        reason = f"{position} jobs start before it"
    else:
        reason = "starting"
    return {"position": position, "reason": reason}
