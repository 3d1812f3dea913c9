"""Job status from this process's memory: what polling clients ask for over and over.

``GET /api/v1/jobs/<id>`` of a running or finished job is kept here under the Redis stamps read
before the database was (``shared.stamps``), per token and job. A poll whose stamps match, whose
entry is younger than ``stamps.MAX_AGE`` and whose token has not expired since is answered
without the database: one Redis round trip instead of the token, job and history queries. The
progress (its ETA moves with the clock) is computed at each answer. A queued job's place depends
on other jobs, so a queued job is always read anew, as is everything while Redis does not answer.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from shared import events, stamps
from shared.auth import hash_token
from shared.jobs import Progressing, progress
from shared.models import JobStatus, utcnow


@dataclass(frozen=True)
class _State:
    """What a job's progress is computed from."""

    status: JobStatus
    epochs_done: int
    epochs_total: int
    started_at: datetime | None


@dataclass(frozen=True)
class _Entry:
    stamps: tuple[str, str]
    kept_at: float
    token_expires_at: datetime | None
    state: _State
    body: dict[str, Any]


class StatusCache:
    """Status responses of running and finished jobs, by token and job, at most ``size`` kept."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def stamps(self, job_id: str) -> tuple[str, str] | None:
        """The stamps to read under, taken before the database is read; None: keep nothing."""
        try:
            return stamps.read(events.redis_client(), job_id)
        except redis.RedisError:
            return None

    def get(self, token: str, job_id: str, now_stamps: tuple[str, str] | None) -> Any:
        """The status response if what is kept is current, else None."""
        if now_stamps is None:
            return None
        key = (hash_token(token), job_id)
        entry = self._entries.get(key)
        if entry is None or entry.stamps != now_stamps:
            return None
        if time.monotonic() - entry.kept_at > stamps.MAX_AGE:
            return None
        if entry.token_expires_at is not None and entry.token_expires_at <= utcnow():
            return None
        return entry.body | {"progress": progress(entry.state)}

    def put(
        self,
        token: str,
        job: Progressing,
        body: dict[str, Any],
        read_stamps: tuple[str, str] | None,
        token_expires_at: datetime | None,
    ) -> None:
        """Keep a response read from the database under the stamps taken before the read."""
        if read_stamps is None or job.status == JobStatus.queued:
            return
        state = _State(job.status, job.epochs_done, job.epochs_total, job.started_at)
        entry = _Entry(read_stamps, time.monotonic(), token_expires_at, state, body)
        with self._lock:
            self._entries[(hash_token(token), body["id"])] = entry
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
