"""Per-user limits: on submissions (jobs waiting at once, submissions per time window) and on
uploads (datasets kept, their bytes, uploads per time window)."""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from functools import lru_cache
from typing import Any

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.errors import QuotaExceeded, RateLimited
from shared.models import Dataset, Job, JobStatus, User
from shared.settings import Settings

log = logging.getLogger(__name__)

# How long a user over the queued-jobs quota is told to wait: a job must start (or be
# cancelled) before another fits, and that takes about a training job's length.
QUOTA_RETRY_AFTER_SECONDS = 60

# A sliding window log in one sorted set per user, scored by the Redis server's own clock so
# that web processes on several machines agree. Admits (0) or says how many ms to wait.
_SLIDING_WINDOW = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(tonumber(oldest[2]) + window - now, 1)
"""


class RateLimiter:
    """At most `limit` admissions per user in any `window_seconds`, shared by every process."""

    def __init__(self, redis_url: str) -> None:
        self.redis = redis.Redis.from_url(
            redis_url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30
        )
        self.script: Any = self.redis.register_script(_SLIDING_WINDOW)

    def admit(self, key: str, limit: int, window_seconds: int) -> float:
        """0 if admitted (and counted), else the seconds until the next admission fits."""
        try:
            wait_ms = int(self.script(keys=[key], args=[window_seconds * 1000, limit, _member()]))
        except redis.RedisError as exc:  # never refuse work because the limiter is unreachable
            log.warning("rate limiter unreachable, admitting %s: %s", key, exc)
            return 0.0
        return wait_ms / 1000.0


def _member() -> str:
    return uuid.uuid4().hex


@lru_cache(maxsize=8)
def rate_limiter(redis_url: str) -> RateLimiter:
    """The process's limiter for a Redis URL."""
    return RateLimiter(redis_url)


def _rate_key(settings: Settings, user: User, what: str = "submit") -> str:
    # One Redis may serve several trainq databases (staging, tests), whose user ids overlap.
    database = hashlib.sha256(settings.database_url.encode()).hexdigest()[:16]
    return f"trainq:{what}-rate:{database}:{user.id}"


def queued_jobs(session: Session, user: User) -> int:
    """How many of the user's jobs are waiting to start."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.owner_id == user.id, Job.status == JobStatus.queued)
        )
        or 0
    )


def _over_quota(queued: int, settings: Settings) -> QuotaExceeded:
    return QuotaExceeded(
        f"you have {queued} queued jobs, the most this server allows is "
        f"{settings.max_queued_jobs}; submit again once some have started",
        retry_after=QUOTA_RETRY_AFTER_SECONDS,
        details={"limit": settings.max_queued_jobs, "queued": queued},
    )


def admit_submission(session: Session, user: User, settings: Settings) -> None:
    """Check a submission against the user's limits before its spec is checked against its
    data or anything is built: QuotaExceeded or RateLimited, else pass.

    The submission spends the rate here, so a spec refused later for its content still counts.
    The queued-jobs count is read again with the new job (``hold_quota``), where two
    submissions at once cannot both fit.
    """
    queued = queued_jobs(session, user)
    if queued >= settings.max_queued_jobs:
        raise _over_quota(queued, settings)
    _spend(settings, _rate_key(settings, user), "submissions", settings.submit_rate,
           settings.submit_rate_window_seconds)  # fmt: skip


def _spend(settings: Settings, key: str, what: str, limit: int, window: int) -> None:
    """Spend one of the user's ``limit`` actions per ``window`` seconds, or RateLimited."""
    wait = rate_limiter(settings.redis_url).admit(key, limit, window)
    if wait > 0:
        raise RateLimited(
            f"at most {limit} {what} per {window} s; try again in {math.ceil(wait)} s",
            retry_after=math.ceil(wait),
            details={"limit": limit, "window_seconds": window},
        )


def hold_quota(session: Session, user: User, settings: Settings) -> None:
    """The queued-jobs quota once more, with the new job: QuotaExceeded, else pass.

    Call it after the new job is flushed and before the commit: the count then includes the
    new job, and a refusal rolls it back, so nothing is recorded.
    """
    # Submissions of one user pass here one at a time: the row lock (PostgreSQL) or the write
    # lock the flushed insert already holds (SQLite) keeps two of them from both fitting.
    # NO KEY UPDATE, because the insert holds KEY SHARE on the same row: FOR UPDATE deadlocks.
    session.execute(select(User.id).where(User.id == user.id).with_for_update(key_share=True))
    queued = queued_jobs(session, user)
    if queued > settings.max_queued_jobs:
        raise _over_quota(queued - 1, settings)


def admit_upload(
    session: Session, user: User, size: int, settings: Settings, *, spend: bool = True
) -> None:
    """Check an upload of ``size`` bytes against the user's limits, before it is read: the
    datasets they keep (their count and bytes: QuotaExceeded until some are deleted) and the
    uploads per window (RateLimited; not ``spend``: an upload in parts completing, counted at
    its start)."""
    session.execute(select(User.id).where(User.id == user.id).with_for_update(key_share=True))
    kept, held = session.execute(
        select(func.count(), func.coalesce(func.sum(Dataset.size_bytes), 0)).where(
            Dataset.owner_id == user.id
        )
    ).one()
    if kept >= settings.max_datasets_per_user:
        raise QuotaExceeded(
            f"you keep {kept} datasets, the most this server allows; delete one "
            "(DELETE /api/v1/datasets/{id}) before uploading another",
            retry_after=QUOTA_RETRY_AFTER_SECONDS,
            details={"limit": settings.max_datasets_per_user, "datasets": kept},
        )
    if held + size > settings.max_dataset_bytes_per_user:
        raise QuotaExceeded(
            f"your datasets take {held} bytes and this one {size}; the most one user may keep is "
            f"{settings.max_dataset_bytes_per_user}: delete some (DELETE /api/v1/datasets/{{id}})",
            retry_after=QUOTA_RETRY_AFTER_SECONDS,
            details={"limit_bytes": settings.max_dataset_bytes_per_user, "bytes": held},
        )
    if spend:
        _spend(settings, _rate_key(settings, user, "upload"), "uploads", settings.upload_rate,
               settings.upload_rate_window_seconds)  # fmt: skip
