"""Server-sent events: a job's status changes and finished epochs, live and resumable."""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis
from flask import Blueprint, Response, current_app, request

from shared import stamps
from shared.db import describe, unavailable
from shared.errors import Busy, InvalidInput, RateLimited
from shared.jobs import events, queries
from shared.models import FINISHED, Job, Sweep, SweepStatus
from shared.sweeps import service as sweep_service
from web import responses
from web.auth import current_user
from web.extensions import db, settings

log = logging.getLogger(__name__)
bp = Blueprint("events", __name__)

POLL_SECONDS = 1.0  # a lost Redis wake-up costs at most this much latency
KEEPALIVE_SECONDS = 15.0
RETRY_MS = 2000
STREAMS_RETRY_SECONDS = 2  # a stream refused for want of threads: when to try again


MAX_EVENT_ID = 2**63 - 1  # the largest id the database's integer holds


def last_event_id() -> int:
    """The Last-Event-ID a client resumes from (0: from the start); 422 if it is no event id."""
    raw = request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or "0"
    try:
        value = int(raw) if len(raw) <= 20 else -1
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_EVENT_ID:
        raise InvalidInput(
            f"Last-Event-ID must be an event id from 0 to {MAX_EVENT_ID}; got {raw[:40]!r}",
            details={"field": "Last-Event-ID"},
        )
    return value


class _UserStreams:
    """Event streams open per user in this process: one user holds at most ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit, self.open = limit, collections.Counter[int]()
        self._lock = threading.Lock()

    def take(self, user_id: int) -> bool:
        with self._lock:
            if self.open[user_id] >= self.limit:
                return False
            self.open[user_id] += 1
            return True

    def give_back(self, user_id: int) -> None:
        with self._lock:
            self.open[user_id] -= 1
            if self.open[user_id] <= 0:
                del self.open[user_id]


def _frame(payload: dict[str, Any]) -> str:
    return f"id: {payload['id']}\nevent: {payload['type']}\ndata: {json.dumps(payload)}\n\n"


def _subscribe(redis_url: str, job_id: str) -> Any:
    try:
        pubsub = redis.Redis.from_url(redis_url, socket_connect_timeout=1).pubsub(
            ignore_subscribe_messages=True
        )
        pubsub.subscribe(stamps.channel(job_id))
        return pubsub
    except redis.RedisError as exc:  # no broker: the stream polls the database only
        log.info("job_id=%s events stream without Redis wake-ups: %s", job_id, exc)
        return None


def _wait(pubsub: Any, seconds: float) -> None:
    if pubsub is None:
        time.sleep(seconds)
        return
    try:
        pubsub.get_message(timeout=seconds)
    except redis.RedisError:
        time.sleep(seconds)


def stream(sessions: Any, redis_url: str, job_id: str, after: int) -> Iterator[str]:
    """Events after ``after`` until the job has ended and every event is sent; while the
    database is away the stream stays open (keep-alives) and goes on once it is back."""
    pubsub = _subscribe(redis_url, job_id)
    last_sent = time.monotonic()
    away = False  # the database did not answer the last read
    try:
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            session = sessions()
            try:
                # The status first: if it is final, every event it implies is already committed.
                job = session.get(Job, job_id)
                status = job.status if job is not None else None
                rows = events.events_after(session, job_id, after)
                payloads = [responses.body(responses.event(r)) for r in rows]
                away = False
            except Exception as exc:
                if not unavailable(exc):
                    raise
                if not away:
                    log.warning("job_id=%s events stream waits for the database: %s",
                                job_id, describe(exc))  # fmt: skip
                away, payloads = True, []
            finally:
                session.close()
            if away:
                _wait(None, POLL_SECONDS)
                if time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
                    yield ": keep-alive\n\n"
                    last_sent = time.monotonic()
                continue
            for payload in payloads:
                after = payload["id"]
                yield _frame(payload)
                last_sent = time.monotonic()
            if not payloads and (status is None or status in FINISHED):
                return
            if payloads:
                continue
            _wait(pubsub, POLL_SECONDS)
            if time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
    finally:
        if pubsub is not None:
            with contextlib.suppress(redis.RedisError):
                pubsub.close()


@bp.get("/<job_id>/events")
def job_events(job_id: str) -> Response:
    """text/event-stream: one event per status change and per finished epoch; resumable.

    A stream holds one of the API process's threads while it is open; at most
    ``TRAINQ_WEB_STREAMS`` at once, so that status polls, submits and predicts always find one,
    and at most ``TRAINQ_WEB_STREAMS_PER_USER`` of them one user's, so that others find one too.
    """
    after = last_event_id()
    user = current_user()
    queries.get_job(db(), user, job_id, history=False)  # 404 unless it is the caller's
    state = current_app.extensions["trainq"]
    return open_stream(
        user.id,
        lambda: stream(state["sessions"], settings().redis_url, job_id, after),
        f"GET /api/v1/jobs/{job_id}",
    )


def open_stream(user_id: int, body: Callable[[], Iterator[str]], poll: str) -> Response:
    """An event stream on one of this process's stream slots and one of the user's; 503 or
    429 (saying to ``poll`` instead) when there is none."""
    state = current_app.extensions["trainq"]
    slots: threading.BoundedSemaphore = state["streams"]
    mine: _UserStreams = state.setdefault(
        "user_streams", _UserStreams(settings().web_streams_per_user)
    )
    if not slots.acquire(blocking=False):  # the process's total first, then the user's share
        limit = settings().web_streams
        raise Busy(
            f"this API process has {limit} event streams open, its most; reconnect with "
            f"Last-Event-ID in {STREAMS_RETRY_SECONDS} s, or poll {poll}",
            retry_after=STREAMS_RETRY_SECONDS,
            details={"limit": limit},
        )
    if not mine.take(user_id):
        slots.release()
        raise RateLimited(
            f"you have {mine.limit} event streams open on this API process, the most one user "
            f"may; close one, or poll {poll}",
            retry_after=STREAMS_RETRY_SECONDS,
            details={"limit": mine.limit},
        )
    try:
        response = Response(
            body(),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        response.call_on_close(slots.release)  # the server closes every response it sent
        response.call_on_close(lambda: mine.give_back(user_id))
    except BaseException:
        slots.release()
        mine.give_back(user_id)
        raise
    return response


def sweep_stream(sessions: Any, sweep_id: str, after: int) -> Iterator[str]:
    """Every trial's events after ``after`` (ids count across the sweep), polled, until the
    sweep has ended; then one ``sweep`` event with the sweep as it ended."""
    last_sent = time.monotonic()
    yield f"retry: {RETRY_MS}\n\n"
    while True:
        session = sessions()
        try:
            row = session.get(Sweep, sweep_id)
            over = row is None or row.status != SweepStatus.running
            payloads = [
                responses.body(responses.trial_event(r, trial))
                for r, trial in events.sweep_events_after(session, sweep_id, after)
            ]
            final = None
            if over and not payloads and row is not None:
                final = responses.body(
                    responses.sweep_summary(row, sweep_service.trials(session, sweep_id))
                )
        except Exception as exc:
            if not unavailable(exc):
                raise
            log.warning("sweep_id=%s events stream waits for the database: %s",
                        sweep_id, describe(exc))  # fmt: skip
            payloads, over, final = [], False, None
        finally:
            session.close()
        for payload in payloads:
            after = payload["id"]
            yield _frame(payload)
            last_sent = time.monotonic()
        if final is not None:
            yield f"id: {after}\nevent: sweep\ndata: {json.dumps(final)}\n\n"
            return
        if over and not payloads:
            return
        if payloads:
            continue
        time.sleep(POLL_SECONDS)
        if time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
