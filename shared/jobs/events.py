"""A job's events: written in the transaction of the change they describe, announced after it.

The ``events`` table is the record: each status change and each finished epoch adds one row,
numbered ``seq`` = 1, 2, 3 ... per job, in the same transaction as the change itself, so a
reader never sees a change without its event nor an event without its change. After the
commit a Redis message on ``trainq:events:<job_id>`` wakes whoever streams the job; Redis
pub/sub may lose messages, so a stream also re-reads the table every second or so. The same
round trip gives the job a new version stamp (``shared.stamps``), which tells the API processes
that what they keep of the job's status is out of date.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from shared import stamps
from shared.models import ApiToken, Event, Job, User, utcnow

log = logging.getLogger(__name__)

STATUS = "status"
EPOCH = "epoch"
_PENDING = "trainq_events"
_AUTH_CHANGED = "trainq_auth_changed"
_redis_url: str | None = None
_clients: dict[str, redis.Redis] = {}


def channel(job_id: str) -> str:
    """The Redis channel that announces a job's new events."""
    return f"trainq:events:{job_id}"


def configure(redis_url: str | None) -> None:
    """Where to announce events (default: the settings' Redis)."""
    global _redis_url
    _redis_url = redis_url


def add_event(session: Session, job_id: str, type: str, data: dict[str, Any]) -> Event:
    """Add the job's next event to the session's transaction; it is announced after commit."""
    session.flush()
    # Lock the job row so that two writers of one job's events take turns (PostgreSQL; SQLite
    # has a single writer anyway): seq then has neither gaps nor duplicates.
    session.execute(select(Job.id).where(Job.id == job_id).with_for_update())
    last = session.scalar(select(func.max(Event.seq)).where(Event.job_id == job_id)) or 0
    row = Event(job_id=job_id, seq=last + 1, type=type, data=data, created_at=utcnow())
    session.add(row)
    session.info.setdefault(_PENDING, set()).add(job_id)
    return row


def events_after(session: Session, job_id: str, after: int, limit: int = 500) -> list[Event]:
    """The job's events with seq greater than ``after``, oldest first."""
    return list(
        session.scalars(
            select(Event)
            .where(Event.job_id == job_id, Event.seq > after)
            .order_by(Event.seq)
            .limit(limit)
        )
    )


def to_dict(row: Event) -> dict[str, Any]:
    """The JSON form of an event, as streamed."""
    return {
        "id": row.seq,
        "job_id": row.job_id,
        "type": row.type,
        "created_at": row.created_at.isoformat(),
        **row.data,
    }


def redis_client() -> redis.Redis:
    """The Redis client of this process for events and stamps."""
    url = _redis_url
    if url is None:
        from shared.settings import get_settings

        url = get_settings().redis_url
    client = _clients.get(url)
    if client is None:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        _clients[url] = client
    return client


def announce(job_ids: set[str]) -> None:
    """Wake the streams of these jobs and restamp them; a lost message only delays a stream."""
    try:
        pipe = redis_client().pipeline(transaction=False)
        for job_id in job_ids:
            stamps.restamp_job(pipe, job_id)
            pipe.publish(channel(job_id), "1")
        pipe.execute()
    except redis.RedisError as exc:
        log.debug("could not announce events of %s: %s", sorted(job_ids), exc)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: Any) -> None:
    # A changed or deleted user or token (disabled, revoked ...) outdates what any process
    # keeps of who a token is; a new one outdates nothing.
    if any(isinstance(o, (User, ApiToken)) for o in (*session.dirty, *session.deleted)):
        session.info[_AUTH_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    job_ids = session.info.pop(_PENDING, None)
    if job_ids:
        announce(job_ids)
    if session.info.pop(_AUTH_CHANGED, None):
        try:
            stamps.restamp_auth(redis_client())
        except redis.RedisError as exc:  # what is kept still expires after stamps.MAX_AGE
            log.warning("could not restamp users and tokens: %s", exc)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_AUTH_CHANGED, None)
