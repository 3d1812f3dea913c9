"""Each fresh worker process gets ready before it takes a job: new database connections, and
TensorFlow loaded and run once (in the pool child, after the fork: never in the main process,
since a process forked from one running TensorFlow can hang)."""

from __future__ import annotations

import logging
import multiprocessing
import os
from typing import Any

from celery.signals import worker_process_init

from shared.db import dispose_all
from shared.settings import Settings, get_settings
from worker import presence

log = logging.getLogger(__name__)
_STDLIB_MAIN = multiprocessing.current_process()  # taken in the worker's main process


def tf_threads(settings: Settings) -> tuple[int, int]:
    """TensorFlow's intra-op and inter-op threads: this process's share of the cores, so that
    several training processes don't oversubscribe them.

    Independent ops run side by side on the whole share; one op is split over half of it at
    most: splitting the small ops of small models costs more than it saves (docs/architecture.md).
    """
    cores = os.cpu_count() or 1
    share = settings.tf_threads or max(1, cores // settings.worker_concurrency)
    return max(1, share // 2), share


def warm_child(**_: Any) -> None:
    """In each fresh child: new DB connections, then TensorFlow loaded before the job comes."""
    dispose_all()
    # Billiard makes each pool child the standard library's current process too: a daemonic
    # one, from which multiprocessing starts no process. Keras's data worker processes
    # (use_multiprocessing; started through a fork server by shared.ml.fit_plan, ended with
    # each epoch) need to start, so to the standard library this child is its parent's main
    # process.
    multiprocessing.process._current_process = _STDLIB_MAIN  # type: ignore[attr-defined]
    presence.claim_gpus()  # its slot's GPUs, before TensorFlow can see any
    settings = get_settings()
    if not settings.warm_tf:  # the periodic worker trains nothing
        return
    from shared.ml import warm  # TensorFlow: only here, in the child

    intra, inter = tf_threads(settings)
    warm.load_tensorflow(intra, inter)
    import worker.training  # noqa: F401  (the job's own modules, imported now)

    warm.first_fit()
    log.info(
        "worker child %s ready (TensorFlow loaded, %d threads an op, %d ops at once)",
        os.getpid(), intra, inter,
    )  # fmt: skip


worker_process_init.connect(warm_child, weak=False)
