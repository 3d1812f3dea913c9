"""Version stamps in Redis, and the wake-ups of event streams, both sent after a commit.

Each change that a job's status shows is committed with one of the job's events
(``shared.jobs.events.add_event`` marks the job changed in its session); after that commit the
job's stamp gets a new random value and a message on ``trainq:events:<job_id>`` wakes whoever
streams the job. Each commit that changes or deletes a user or an API token gives the
users-and-tokens stamp a new one. The hooks that do this are bound to trainq's sessionmaker
(``shared.db.sessions``), so every process that writes through it (the API, the workers, the
admin commands) announces its changes, and no other session is touched.

A reader takes the stamps *before* it reads the database and keeps what it read under them:
while both stamps are unchanged, so is what it read. Redis keeps no stamp across a restart;
nothing is kept under a missing stamp, and nothing is kept longer than ``MAX_AGE`` seconds in
any case (a stamp that could not be written when its change was committed is then outlived).
Redis pub/sub may lose messages too, so a stream also re-reads the events table now and then.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import redis
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from shared.models import ApiToken, User

log = logging.getLogger(__name__)

AUTH_KEY = "trainq:stamp:auth"
PERIODIC_KEY = "trainq:periodic:last_run"
JOB_STAMP_SECONDS = 7 * 24 * 3600  # a finished job's stamp goes; its status is then read anew
MAX_AGE = 5.0
_CHANGED_JOBS = "trainq_changed_jobs"
_AUTH_CHANGED = "trainq_auth_changed"
_redis_url: str | None = None
_clients: dict[str, redis.Redis] = {}


def job_key(job_id: str) -> str:
    """The Redis key of a job's stamp."""
    return f"trainq:stamp:job:{job_id}"


def channel(job_id: str) -> str:
    """The Redis channel that announces a job's new events."""
    return f"trainq:events:{job_id}"


def configure(redis_url: str | None) -> None:
    """Which Redis to stamp and announce on (default: the settings')."""
    global _redis_url
    _redis_url = redis_url


def redis_client() -> redis.Redis:
    """The Redis client of this process for stamps and announcements."""
    url = _redis_url
    if url is None:
        from shared.settings import get_settings

        url = get_settings().redis_url
    client = _clients.get(url)
    if client is None:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        _clients[url] = client
    return client


def restamp_job(pipe: Any, job_id: str) -> None:
    """Queue a new stamp for the job on a Redis pipeline."""
    pipe.set(job_key(job_id), uuid.uuid4().hex, ex=JOB_STAMP_SECONDS)


def restamp_auth(client: Any) -> None:
    """A new stamp for users and tokens."""
    client.set(AUTH_KEY, uuid.uuid4().hex)


def read(client: Any, job_id: str) -> tuple[str, str] | None:
    """The users-and-tokens stamp and the job's, or None when either is missing."""
    auth, job = client.mget(AUTH_KEY, job_key(job_id))
    if auth is None:  # first use, or Redis restarted: stamp now, keep nothing this time
        client.set(AUTH_KEY, uuid.uuid4().hex, nx=True)
        return None
    if job is None:
        return None
    return auth.decode(), job.decode()


def periodic_ran(client: Any) -> None:
    """Note that a round of the periodic jobs has just ended (``/healthz`` and ``/metrics``)."""
    client.set(PERIODIC_KEY, repr(time.time()))


def periodic_last_run(client: Any) -> float | None:
    """When a round of the periodic jobs last ended (Unix time), or None if none has here."""
    value = client.get(PERIODIC_KEY)
    return float(value) if value is not None else None


def job_changed(session: Session, job_id: str) -> None:
    """Restamp and announce the job once the session's transaction commits."""
    session.info.setdefault(_CHANGED_JOBS, set()).add(job_id)


def announce(job_ids: set[str]) -> None:
    """Wake the streams of these jobs and restamp them; a lost message only delays a stream."""
    try:
        pipe = redis_client().pipeline(transaction=False)
        for job_id in job_ids:
            restamp_job(pipe, job_id)
            pipe.publish(channel(job_id), "1")
        pipe.execute()
    except redis.RedisError as exc:
        log.debug("could not announce events of %s: %s", sorted(job_ids), exc)


def _after_flush(session: Session, _context: Any) -> None:
    # A changed or deleted user or token (disabled, revoked ...) outdates what any process
    # keeps of who a token is; a new one outdates nothing.
    if any(isinstance(o, (User, ApiToken)) for o in (*session.dirty, *session.deleted)):
        session.info[_AUTH_CHANGED] = True


def _after_commit(session: Session) -> None:
    job_ids = session.info.pop(_CHANGED_JOBS, None)
    if job_ids:
        announce(job_ids)
    if session.info.pop(_AUTH_CHANGED, None):
        try:
            restamp_auth(redis_client())
        except redis.RedisError as exc:  # what is kept still expires after MAX_AGE
            log.warning("could not restamp users and tokens: %s", exc)


def _after_rollback(session: Session) -> None:
    session.info.pop(_CHANGED_JOBS, None)
    session.info.pop(_AUTH_CHANGED, None)


def bind(factory: sessionmaker[Session]) -> None:
    """Announce what the sessions of this sessionmaker commit."""
    event.listen(factory, "after_flush", _after_flush)
    event.listen(factory, "after_commit", _after_commit)
    event.listen(factory, "after_rollback", _after_rollback)
