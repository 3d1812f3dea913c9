"""Hands committed jobs to the Celery workers (the web side never imports the worker)."""

from __future__ import annotations

import logging

from celery import Celery

from shared.db import sessions
from shared.jobs import lifecycle
from shared.settings import Settings

log = logging.getLogger(__name__)


class JobQueue:
    """A Celery producer for training jobs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = sessions(settings.database_url)
        self.celery = Celery("trainq-web", broker=settings.redis_url)
        self.celery.conf.update(broker_connection_timeout=2, broker_connection_max_retries=1)

    def send(self, job_id: str) -> bool:
        """Publish a job and record when; False if the broker is down (the job stays queued)."""
        return lifecycle.send(self.db, job_id, self.publish)

    def publish(self, job_id: str, queue: str | None = None) -> bool:
        """Hand a job to the broker (the shared queue, or one worker's); the task id is the job
        id. False if the broker is down."""
        try:
            self.celery.send_task(
                lifecycle.TRAIN_TASK,
                args=[job_id],
                task_id=job_id,
                queue=queue,
                retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
            )
        except Exception:  # the job is safe in the database; log and let the reconciler retry
            log.warning("job_id=%s state=queued broker unreachable, will be re-sent", job_id)
            return False
        return True
