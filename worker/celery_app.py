"""The Celery app, built by ``make_celery`` and configured for long training jobs on Redis."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from typing import Any

from billiard.process import active_children
from celery import Celery
from celery.signals import worker_shutting_down

from shared.jobs.lifecycle import TRAIN_TASK
from shared.settings import Settings

log = logging.getLogger(__name__)
PERIODIC_QUEUE = "trainq.periodic"
RECONCILE_TASK = "trainq.reconcile"
# Webhook deliveries: a light task on a queue of its own (the periodic worker takes it too), so
# a slow or dead receiver never holds a training slot.
WEBHOOKS_QUEUE = "trainq.webhooks"
WEBHOOKS_TASK = "trainq.webhooks.deliver"


PERIODIC_TASKS = frozenset({RECONCILE_TASK, WEBHOOKS_TASK})


class QuietRounds(logging.Filter):
    """Leaves out Celery's INFO lines about each periodic round (beat's "Sending due task", the
    worker's "received" and "succeeded"): a round every few seconds would bury the log. What a
    round does (a job requeued or dispatched, a webhook sent) it logs itself, and a round that
    raises is still logged, as an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        data = getattr(record, "data", None)  # the worker's lines carry the task's name here
        if isinstance(data, dict):
            return data.get("name") not in PERIODIC_TASKS
        args = record.args if isinstance(record.args, tuple) else ()
        return not (record.name == "celery.beat" and args and args[-1] in PERIODIC_TASKS)


_QUIET = QuietRounds()


def make_celery(settings: Settings) -> Celery:
    """The worker's Celery app for these settings; its tasks are in ``worker.tasks`` and
    ``worker.periodic``."""
    app = Celery("trainq", broker=settings.redis_url, include=["worker.tasks", "worker.periodic"])
    app.conf.update(
        task_ignore_result=True,  # the jobs table, not a result backend, is the truth about a job
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # A child grows a few MB a job (freed memory the allocator keeps, TensorFlow's caches);
        # a fresh child after some jobs, or after a job that left it large, returns all of it.
        # Reusing a child in between saves the TensorFlow import (seconds) per job.
        worker_max_tasks_per_child=settings.worker_jobs_per_child,
        worker_max_memory_per_child=settings.worker_max_memory_mb * 1024 or None,
        # The new child imports TensorFlow before it takes a job; that takes longer than the
        # default.
        worker_proc_alive_timeout=120,
        # Above the longest job allowed, or Redis would deliver a running job a second time.
        broker_transport_options={
            "visibility_timeout": max(12 * 3600, 2 * settings.max_job_seconds)
        },
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # What a job prints (Keras's epoch lines as fit's `verbose` asks) is not a warning.
        worker_redirect_stdouts_level="INFO",
        # Periodic jobs go to their own light worker, so they never take a training slot.
        task_routes={
            RECONCILE_TASK: {"queue": PERIODIC_QUEUE},
            WEBHOOKS_TASK: {"queue": WEBHOOKS_QUEUE},
        },
        beat_schedule={
            "reconcile": {"task": RECONCILE_TASK, "schedule": settings.reconcile_seconds},
            # The outbox's sweep: what was written while no worker ran is sent all the same.
            # A round nobody took in time is dropped (the next one sends the same deliveries).
            "webhooks": {
                "task": WEBHOOKS_TASK,
                "schedule": settings.webhooks_poll_seconds,
                "options": {"expires": max(30.0, 5 * settings.webhooks_poll_seconds)},
            },
        },
    )
    worker_shutting_down.connect(_hand_back_jobs, weak=False)
    for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace"):
        logging.getLogger(name).addFilter(_QUIET)  # once: the same filter is not added twice
    return app


class Publisher:
    """Hands a job to the training workers through a Celery app; the task id is the job id."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def __call__(self, job_id: str, queue: str | None = None) -> bool:
        """Publish the job, to the shared queue or to ``queue`` (one worker's); False if the
        broker is down (the job stays queued in the database, and a later round sends it)."""
        try:
            self.app.send_task(TRAIN_TASK, args=[job_id], task_id=job_id, queue=queue)
        except Exception:
            log.warning("job_id=%s state=queued broker unreachable", job_id, exc_info=True)
            return False
        return True


def _hand_back_jobs(**_: Any) -> None:
    """On a warm shutdown (SIGTERM to the worker), ask the pool's children to hand back their jobs.

    Celery would otherwise wait for a training job to end, however long it takes. A child that
    is training stops after its batch (``worker.watch.on_sigterm``); an idle one just exits.
    """
    for child in active_children():
        if child.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
