"""Periodic jobs (Celery beat): put back jobs the broker or a dead worker lost."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import redis
from celery import shared_task

from shared import stamps
from shared.db import sessions
from shared.jobs import lifecycle
from shared.jobs.dispatch import dispatch
from shared.settings import Settings, get_settings
from worker.celery_app import RECONCILE_TASK, Publisher

log = logging.getLogger(__name__)


def broker_job_ids(client: redis.Redis) -> set[str]:
    """Ids of the training messages the broker holds: waiting in the queue or delivered unacked."""
    raw: list[bytes] = list(client.lrange("celery", 0, -1))  # type: ignore[arg-type]
    raw += [json.dumps(json.loads(v)[0]).encode() for v in client.hvals("unacked")]
    ids = set()
    for item in raw:
        try:
            ids.add(json.loads(item)["headers"]["id"])
        except (ValueError, KeyError, TypeError):
            continue
    return ids


def reconcile_once(settings: Settings, send: Callable[[str], bool]) -> dict[str, list[str]]:
    """Requeue running jobs whose worker went silent, re-send what the broker lost.

    ``send`` publishes a job and records when (``lifecycle.send``)."""
    db = sessions(settings.database_url)
    stale = timedelta(seconds=settings.stale_seconds)
    requeued = [j for j in lifecycle.stale_running(db, stale) if lifecycle.requeue(db, j, stale)]
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
        result = reconcile_once(settings, lambda job_id: lifecycle.send(db, job_id, publish))
        result["dispatched"] = dispatch(db, settings, publish)
        stamps.periodic_ran(client)
        return result
    finally:
        with contextlib.suppress(redis.exceptions.LockError):  # expired while we worked
            lock.release()
