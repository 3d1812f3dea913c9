"""Job status from this process's memory: what polling clients ask for over and over.

``StampedCache`` keeps what a token was allowed to read of a job; ``StatusCache`` is the one for
status responses, and predict keeps which model file a token may call in another (web.jobs).

``GET /api/v1/jobs/<id>`` of a running or finished job is kept here under the Redis stamps read
before the database was (``shared.stamps``), per token and job; stamps read for a job serve its
polls for ``reuse_seconds`` (20 ms) before they are read again. A poll whose stamps match, whose
entry is younger than ``stamps.MAX_AGE`` and whose token has not expired since is answered
without the database: at most one Redis round trip instead of the token, job and history
queries. The progress (its ETA moves with the clock) is computed at each answer. A queued job's
place depends on other jobs, so a queued job is always read anew, as is everything while Redis
does not answer.

``FastPath`` answers such polls before Flask sees them, with the same bytes the route would send;
everything else, and every poll it cannot answer from memory, goes on to Flask.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from shared import stamps
from shared.auth import hash_token
from shared.models import JobStatus, utcnow
from web import security
from web.metrics import HTTP_REQUESTS
from web.responses import Progressing, progress

STAMPS_KEY = "trainq.stamps"  # the stamps a poll read, for the route if it reads the database
_STATUS_PATH = re.compile(r"/api/v1/jobs/([A-Za-z0-9_-]{1,64})")
_ROUTE = "/api/v1/jobs/<job_id>"


@dataclass(frozen=True)
class _State:
    """What a job's progress is computed from."""

    status: JobStatus
    epochs_done: int
    epochs_total: int
    started_at: datetime | None
    first_epoch: int | None


@dataclass(frozen=True)
class _Entry:
    stamps: tuple[str, str]
    kept_at: float
    token_expires_at: datetime | None
    value: Any
    size: int = 0


class StampedCache:
    """What a token was allowed to read of a job, kept under the stamps read before the read.

    At most ``size`` entries, by token and job, and at most ``max_bytes`` of them as their
    keepers count them (the oldest go first; one larger than that is not kept). An entry serves
    while the stamps are unchanged, it is younger than ``stamps.MAX_AGE`` and its token has not
    expired since.
    """

    def __init__(
        self, size: int = 4096, reuse_seconds: float = 0.02, max_bytes: int = 32 * 1024 * 1024
    ) -> None:
        self.size, self.max_bytes, self.bytes = size, max_bytes, 0
        # Stamps read for a job serve that job's requests for this long: under a thousand
        # requests a second, a few dozen Redis round trips; a change is seen at most this late.
        self.reuse_seconds = reuse_seconds
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._read: dict[str, tuple[float, tuple[str, str]]] = {}
        self._lock = threading.Lock()

    def stamps(self, job_id: str) -> tuple[str, str] | None:
        """The stamps to read under, taken before the database is read; None: keep nothing."""
        now = time.monotonic()
        recent = self._read.get(job_id)
        if recent is not None and now - recent[0] < self.reuse_seconds:
            return recent[1]
        try:
            read = stamps.read(stamps.redis_client(), job_id)
        except redis.RedisError:
            return None
        if read is not None:
            if len(self._read) >= self.size:
                self._read.clear()
            self._read[job_id] = (now, read)
        return read

    def lookup(self, token: str, job_id: str, now_stamps: tuple[str, str] | None) -> Any:
        """What was kept for this token and job if it is current, else None."""
        if now_stamps is None:
            return None
        entry = self._entries.get((hash_token(token), job_id))
        if entry is None or entry.stamps != now_stamps:
            return None
        if time.monotonic() - entry.kept_at > stamps.MAX_AGE:
            return None
        if entry.token_expires_at is not None and entry.token_expires_at <= utcnow():
            return None
        return entry.value

    def keep(
        self,
        token: str,
        job_id: str,
        value: Any,
        read_stamps: tuple[str, str] | None,
        token_expires_at: datetime | None,
        size: int = 0,
    ) -> None:
        """Keep what was read from the database under the stamps taken before the read;
        ``size``: its bytes, as counted against ``max_bytes``."""
        if read_stamps is None:
            return
        entry = _Entry(read_stamps, time.monotonic(), token_expires_at, value, size)
        key = (hash_token(token), job_id)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.bytes -= old.size
            if size > self.max_bytes:
                return
            self._entries[key] = entry
            self.bytes += size
            while len(self._entries) > self.size or self.bytes > self.max_bytes:
                _, gone = self._entries.popitem(last=False)
                self.bytes -= gone.size


class StatusCache(StampedCache):
    """Status responses of running and finished jobs, by token and job."""

    def get(self, token: str, job_id: str, now_stamps: tuple[str, str] | None) -> Any:
        """The status response if what is kept is current, else None."""
        kept = self.lookup(token, job_id, now_stamps)
        if kept is None:
            return None
        state, body = kept
        return body | {"progress": progress(state)}

    def put(
        self,
        token: str,
        job: Progressing,
        body: dict[str, Any],
        read_stamps: tuple[str, str] | None,
        token_expires_at: datetime | None,
    ) -> None:
        """Keep a response read from the database, unless the job is queued."""
        if job.status == JobStatus.queued:
            return
        state = _State(
            job.status, job.epochs_done, job.epochs_total, job.started_at, job.first_epoch
        )
        size = len(json.dumps(body, separators=(",", ":")))  # about what the answer weighs
        self.keep(token, body["id"], (state, body), read_stamps, token_expires_at, size)


class FastPath:
    """WSGI middleware: status polls that the cache can answer, answered without Flask."""

    def __init__(
        self, wsgi_app: Callable[..., Iterable[bytes]], cache: StatusCache,
        dumps: Callable[..., str],
    ) -> None:  # fmt: skip
        self.wsgi_app, self.cache, self.dumps = wsgi_app, cache, dumps

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        match = _STATUS_PATH.fullmatch(environ.get("PATH_INFO", ""))
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        token = token.strip()
        if environ.get("REQUEST_METHOD") != "GET" or not match or scheme.lower() != "bearer":
            return self.wsgi_app(environ, start_response)
        job_id = match.group(1)
        environ[STAMPS_KEY] = read = self.cache.stamps(job_id)
        kept = self.cache.get(token, job_id, read) if token else None
        if kept is None:
            return self.wsgi_app(environ, start_response)
        data = f"{self.dumps(kept, separators=(',', ':'))}\n".encode()  # as Flask would send it
        # The route's headers: its type, the security headers, no-store (web.security).
        start_response("200 OK", [*security.json_headers(), ("Content-Length", str(len(data)))])
        HTTP_REQUESTS.labels("GET", _ROUTE, "200").inc()
        return [data]
