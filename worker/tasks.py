"""The training task: takes a job id, never a whole job."""

from __future__ import annotations

from shared.jobs.lifecycle import TRAIN_TASK
from shared.settings import get_settings
from worker.celery_app import app


@app.task(name=TRAIN_TASK)
def train(job_id: str) -> None:
    """Train one job; everything about it is read from and written to the database."""
    from worker.training import run_job

    run_job(get_settings(), job_id)
