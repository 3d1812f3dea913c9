"""Periodic jobs (Celery beat): put back jobs the broker or a dead worker lost."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from datetime import timedelta

import redis

from shared.jobs import lifecycle
from shared.jobs.dispatch import dispatch
from shared.settings import Settings, get_settings
from worker.celery_app import app

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


def publish(job_id: str) -> bool:
    """Hand a job to the workers; the task id is the job id. False if the broker is down."""
    try:
        app.send_task(lifecycle.TRAIN_TASK, args=[job_id], task_id=job_id)
    except Exception:  # the job stays queued in the database; a later round sends it
        log.warning("job_id=%s state=queued broker unreachable", job_id, exc_info=True)
        return False
    return True


def send(job_id: str) -> bool:
    """Publish a job again and record when."""
    return lifecycle.send(get_settings().database_url, job_id, publish)


def reconcile_once(settings: Settings, send: Callable[[str], bool]) -> dict[str, list[str]]:
    """Requeue running jobs whose worker went silent, re-send what the broker lost, dispatch."""
    url = settings.database_url
    stale = timedelta(seconds=settings.stale_seconds)
    requeued = [j for j in lifecycle.stale_running(url, stale) if lifecycle.requeue(url, j, stale)]
    for job_id in requeued:
        log.warning("job_id=%s state=queued reason=worker went silent", job_id)
    sent = lifecycle.sent_not_started(url, timedelta(seconds=settings.requeue_after_seconds))
    resent = []
    if sent:
        held = broker_job_ids(redis.Redis.from_url(settings.redis_url))
        for job_id in sent:
            if job_id in held:
                lifecycle.mark_sent(url, job_id)
                continue
            log.warning("job_id=%s state=queued reason=not in broker, re-sent", job_id)
            if send(job_id):
                resent.append(job_id)
    return {"requeued": requeued, "resent": resent}


@app.task(name="trainq.reconcile")
def reconcile() -> dict[str, list[str]] | None:
    """The periodic reconciler (every TRAINQ_RECONCILE_SECONDS under beat), one round at a time."""
    settings = get_settings()
    client = redis.Redis.from_url(settings.redis_url)
    # Two rounds at once (a second beat, a slow round) could send the same job twice.
    lock = client.lock("trainq:reconcile", timeout=max(60.0, 4 * settings.reconcile_seconds))
    if not lock.acquire(blocking=False):
        return None
    try:
        result = reconcile_once(settings, send)
        result["dispatched"] = dispatch(settings, publish)
        return result
    finally:
        with contextlib.suppress(redis.exceptions.LockError):  # expired while we worked
            lock.release()
