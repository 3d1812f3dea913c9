"""The training task: takes a job id, never a whole job."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from shared.jobs.lifecycle import TRAIN_TASK
from shared.settings import get_settings
from worker.celery_app import Publisher


@shared_task(name=TRAIN_TASK, bind=True)
def train(self: Any, job_id: str) -> None:
    """Train one job; everything about it is read from and written to the database."""
    from worker.training import run_job  # TensorFlow: in the pool child only

    run_job(get_settings(), job_id, Publisher(self.app))
