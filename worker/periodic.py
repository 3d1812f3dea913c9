"""Periodic jobs (Celery beat): put back jobs the broker or a dead worker lost, ask the
sweeps for the trials they have room for, and send the due webhook deliveries.

A round that finds the database unavailable ends there, noting when (``OUTAGE_KEY``); the next
round runs as usual. A worker cannot write its heartbeat while the database is away, so after
an outage every heartbeat looks old: a worker's silence counts only from when the database
could take its heartbeat again (``writable_since``), and no job is requeued before its worker
has had ``stale_seconds`` of a reachable database to beat its heart (it does at once).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from celery import shared_task

from shared import stamps, workers
from shared.db import Sessions, describe, server_started_at, sessions, unavailable
from shared.jobs import lifecycle
from shared.jobs.dispatch import dispatch, unsend_placed
from shared.models import utcnow
from shared.settings import Settings, get_settings
from shared.sweeps import service as sweeps
from shared.webhooks import delivery
from worker.celery_app import RECONCILE_TASK, WEBHOOKS_TASK, Publisher

log = logging.getLogger(__name__)

# When a round last found the database unavailable (Unix time), for every periodic process.
OUTAGE_KEY = "trainq:database:unavailable_at"
_OUTAGE_KEEP_SECONDS = 7 * 24 * 3600
PRUNE_EVERY_SECONDS = 3600  # the webhooks' old deliveries are deleted once an hour
_last_outage: list[float] = []  # the same, as this process saw it (Redis may be away too)


def note_outage(client: redis.Redis) -> None:
    """Remember that the database is unavailable now."""
    now = time.time()
    _last_outage[:] = [now]
    with contextlib.suppress(redis.RedisError):
        client.set(OUTAGE_KEY, repr(now), ex=_OUTAGE_KEEP_SECONDS)


def writable_since(db: Sessions, client: redis.Redis | None) -> datetime | None:
    """Since when the database has been taking heartbeats, as far as anyone saw: the later of
    the last round that found it unavailable and its server's start (PostgreSQL: a restart
    nobody saw fail is an outage too); None if neither is known."""
    moments = list(_last_outage)
    if client is not None:
        with contextlib.suppress(redis.RedisError, ValueError):
            stored = client.get(OUTAGE_KEY)
            if stored is not None:
                moments.append(float(stored))
    seen = [datetime.fromtimestamp(m, UTC) for m in moments]
    started = server_started_at(db)
    if started is not None:
        seen.append(started)
    return max(seen, default=None)


def broker_job_ids(client: redis.Redis) -> set[str]:
    """Ids of the training messages the broker holds: waiting in the queue or delivered unacked."""
    # The shared queue, and the own queue of each live worker (a dead worker's holds nothing
    # any worker will take: its jobs are lost, and the dispatcher places them again).
    names = ["celery", *(w.queue for w in workers.live(client))]
    raw: list[bytes] = [m for q in names for m in client.lrange(q, 0, -1)]  # type: ignore[misc]
    raw += [json.dumps(json.loads(v)[0]).encode() for v in client.hvals("unacked")]
    ids = set()
    for item in raw:
        try:
            ids.add(json.loads(item)["headers"]["id"])
        except (ValueError, KeyError, TypeError):
            continue
    return ids


def reconcile_once(
    settings: Settings, send: Callable[[str], bool], client: redis.Redis | None = None
) -> dict[str, list[str]]:
    """Requeue running jobs whose worker went silent, re-send what the broker lost.

    ``send`` publishes a job and records when (``lifecycle.send``); ``client`` is the Redis
    where the rounds note an outage of the database."""
    db = sessions(settings.database_url)
    stale = timedelta(seconds=settings.stale_seconds)
    silent = lifecycle.stale_running(db, stale)
    since = writable_since(db, client) if silent else None
    if since is not None and since > utcnow() - stale:
        # The database came back less than stale_seconds ago: these workers could not beat
        # their hearts until then. Live ones do at once; the next rounds requeue the others.
        log.info(
            "%d running jobs with old heartbeats wait: the database takes heartbeats since "
            "%s, under %s s ago", len(silent), since.isoformat(), settings.stale_seconds,
        )  # fmt: skip
        silent = []
    requeued = [j for j in silent if lifecycle.requeue(db, j, stale)]
    for job_id in requeued:
        log.warning("job_id=%s state=queued reason=worker went silent", job_id)
    sent = lifecycle.sent_not_started(db, timedelta(seconds=settings.requeue_after_seconds))
    resent = []
    if sent:
        held = broker_job_ids(redis.Redis.from_url(settings.redis_url))
        for job_id in sent:
            if job_id in held:
                lifecycle.mark_sent(db, job_id)
                continue
            if unsend_placed(db, job_id):  # the dispatcher places it again
                log.warning("job_id=%s state=queued reason=not in broker, placed again", job_id)
                resent.append(job_id)
                continue
            log.warning("job_id=%s state=queued reason=not in broker, re-sent", job_id)
            if send(job_id):
                resent.append(job_id)
    return {"requeued": requeued, "resent": resent}


@shared_task(name=RECONCILE_TASK, bind=True)
def reconcile(self: Any) -> dict[str, list[str]] | None:
    """The periodic reconciler (every TRAINQ_RECONCILE_SECONDS under beat), one round at a time."""
    settings = get_settings()
    client = redis.Redis.from_url(settings.redis_url)
    # Two rounds at once (a second beat, a slow round) could send the same job twice.
    lock = client.lock("trainq:reconcile", timeout=max(60.0, 4 * settings.reconcile_seconds))
    if not lock.acquire(blocking=False):
        return None
    try:
        db, publish = sessions(settings.database_url), Publisher(self.app)
        result = reconcile_once(
            settings, lambda job_id: lifecycle.send(db, job_id, publish), client
        )
        # Sweeps ask for their next trials first (a trial's end normally does it at once).
        result["trials"] = sweeps.advance_all(db, settings)
        result["dispatched"] = dispatch(db, settings, publish)
        stamps.periodic_ran(client)
        return result
    except Exception as exc:
        if not unavailable(exc):
            raise
        # This round ends here; the next one runs as usual and tries again.
        note_outage(client)
        log.warning("reconcile: the database is unavailable (%s); next round", describe(exc))
        return None
    finally:
        with contextlib.suppress(redis.exceptions.LockError):  # expired while we worked
            lock.release()


@shared_task(name=WEBHOOKS_TASK)
def deliver_webhooks() -> dict[str, int] | None:
    """Send the due webhook deliveries (every TRAINQ_WEBHOOKS_POLL_SECONDS under beat), one
    round at a time; a round takes at most a few attempts' timeouts."""
    settings = get_settings()
    client = redis.Redis.from_url(settings.redis_url)
    lock = client.lock("trainq:webhooks", timeout=delivery.round_seconds(settings) + 30)
    if not lock.acquire(blocking=False):
        return None
    try:
        db = sessions(settings.database_url)
        counts = delivery.deliver_due(db, settings)
        due = client.set("trainq:webhooks:pruned", 1, nx=True, ex=PRUNE_EVERY_SECONDS)
        if due and (gone := delivery.prune(db, settings)):
            log.info("webhooks: %d deliveries past TRAINQ_WEBHOOKS_KEEP_DAYS deleted", gone)
        return counts
    except Exception as exc:
        if not unavailable(exc):
            raise
        log.warning("webhooks: the database is unavailable (%s); next round", describe(exc))
        return None
    finally:
        with contextlib.suppress(redis.exceptions.LockError):
            lock.release()
