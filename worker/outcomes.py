"""What becomes of a job whose training stopped early: cancelled, handed back, or failed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared import artifacts, storage
from shared.db import sessions
from shared.jobs import lifecycle
from shared.jobs.dispatch import Publish, dispatch
from shared.settings import Settings
from shared.sweeps import service as sweeps
from worker import checkpoint
from worker.watch import Stop, Watch

log = logging.getLogger(__name__)


def redispatch(settings: Settings, publish: Publish | None) -> None:
    """Hand out slots freed by a job that ended here; never fails the task. Without a
    publisher (a job trained outside a worker), the periodic round hands them out."""
    if publish is None:
        return
    try:
        dispatch(sessions(settings.database_url), settings, publish)
    except Exception:  # the periodic round dispatches what this one could not
        log.warning("dispatch after a job ended failed", exc_info=True)


def advance_sweep(settings: Settings, sweep_id: str) -> None:
    """Ask the sweep of a trial that ended here for its next trials; never fails the task (the
    periodic round advances every sweep)."""
    try:
        sweeps.advance(sessions(settings.database_url), settings, sweep_id)
    except Exception:
        log.warning("sweep_id=%s: advancing after a trial ended failed", sweep_id, exc_info=True)


SaveModel = Callable[[Any, Path, storage.Store], dict[str, tuple[str, int, str]]]


def finish_stopped(
    settings: Settings,
    job_id: str,
    model: Any,
    watch: Watch,
    save: SaveModel,
    publish: Publish | None,
) -> bool:
    """End a job whose fit was stopped; False when training ran to its end and should finish."""
    db, reason = watch.db, watch.reason
    if reason is None:
        return False
    if reason == Stop.lost:
        log.warning("job_id=%s no longer ours; leaving it to its new worker", job_id)
        return True
    if not watch.interrupted and reason != Stop.cancel:
        return False  # every epoch ran: finish the job rather than throw the work away
    if reason == Stop.shutdown and lifecycle.cancel_requested(db, job_id):
        reason = Stop.cancel  # asked to cancel as well: a cancel is final, never handed back
    if reason == Stop.cancel:
        files: dict[str, tuple[str, int, str]] = {}
        if checkpoint.restore(model, watch.checkpoint_dir):  # the last finished epoch's model
            folder = artifacts.job_dir(settings.artifacts, job_id)
            files = save(model, folder, storage.artifacts(settings))
        watch.patiently(lambda: lifecycle.cancelled(db, job_id, files), "cancelled")
        log.info("job_id=%s state=cancelled model=%s", job_id, bool(files))
    elif reason == Stop.shutdown:
        if lifecycle.hand_back(db, job_id, watch.worker):
            log.info("job_id=%s state=queued handed back at shutdown", job_id)
            # Its slot is free again: the dispatcher gives it (or a job of whoever's turn it
            # is) to a worker that is not shutting down.
            redispatch(settings, publish)
    else:
        watch.patiently(
            lambda: lifecycle.fail(db, job_id, watch.detail, worker=watch.worker), "failed"
        )
        log.info("job_id=%s state=failed %s", job_id, watch.detail)
    return True
