"""The Celery app, configured for long training jobs on Redis."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import tempfile
from typing import Any

from billiard.process import active_children
from celery import Celery
from celery.signals import worker_process_init, worker_shutting_down

from shared.db import dispose_all
from shared.settings import get_settings

log = logging.getLogger(__name__)
settings = get_settings()
PERIODIC_QUEUE = "trainq.periodic"
_STDLIB_MAIN = multiprocessing.current_process()  # taken in the worker's main process

app = Celery("trainq", broker=settings.redis_url, include=["worker.tasks", "worker.periodic"])
app.conf.update(
    task_ignore_result=True,  # the jobs table, not a result backend, is the truth about a job
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    # A child grows a few MB a job (freed memory the allocator keeps, TensorFlow's caches); a
    # fresh child after some jobs, or after a job that left it large, returns all of it. Reusing
    # a child in between saves the TensorFlow import (seconds) per job.
    worker_max_tasks_per_child=settings.worker_jobs_per_child,
    worker_max_memory_per_child=settings.worker_max_memory_mb * 1024 or None,
    # The new child imports TensorFlow before it takes a job; that takes longer than the default.
    worker_proc_alive_timeout=120,
    # Above the longest job allowed, or Redis would deliver a running job a second time.
    broker_transport_options={"visibility_timeout": max(12 * 3600, 2 * settings.max_job_seconds)},
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    # Periodic jobs go to their own light worker, so they never take a training slot.
    task_routes={"trainq.reconcile": {"queue": PERIODIC_QUEUE}},
    beat_schedule={
        "reconcile": {"task": "trainq.reconcile", "schedule": settings.reconcile_seconds},
    },
)


def tf_threads() -> tuple[int, int]:
    """TensorFlow's intra-op and inter-op threads: this process's share of the cores, so that
    several training processes don't oversubscribe them.

    Independent ops run side by side on the whole share; one op is split over half of it at
    most. Splitting the small ops of small models costs more than it saves: on 2 cores, a
    quickstart epoch took 0.64 s with 1 thread an op and 0.97 s with 2, a small CNN's 0.91 s
    and 1.1 s (benchmarks.train shows the effect on the service).
    """
    cores = os.cpu_count() or 1
    share = settings.tf_threads or max(1, cores // settings.worker_concurrency)
    return max(1, share // 2), share


@worker_process_init.connect
def _warm_child(**_: Any) -> None:
    """In each fresh child: new DB connections, then TensorFlow loaded before the job comes."""
    dispose_all()
    # Billiard makes each pool child the standard library's current process too: a daemonic
    # one, from which multiprocessing starts no process. Keras's data worker processes
    # (use_multiprocessing; started through a fork server by shared.ml.fit_plan, ended with each
    # epoch) need to start, so to the standard library this child is its parent's main process.
    multiprocessing.process._current_process = _STDLIB_MAIN  # type: ignore[attr-defined]
    if not settings.warm_tf:  # the periodic worker trains nothing
        return
    import tensorflow as tf

    intra, inter = tf_threads()
    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    _first_fit()
    log.info(
        "worker child %s ready (TensorFlow loaded, %d threads an op, %d ops at once)",
        os.getpid(), intra, inter,
    )  # fmt: skip


def _first_fit() -> None:
    """Train a throwaway model for one step, so that what TensorFlow sets up on a process's first
    fit (its runtime, the data pipeline, summary writers: seconds) is done before a job waits."""
    import keras
    import numpy as np

    import worker.training  # noqa: F401  (the job's own modules, imported now)

    with tempfile.TemporaryDirectory(prefix="trainq-warm-") as logs:
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        model.compile(optimizer="adam", loss="mse")
        x = np.zeros((8, 4), dtype="float32")
        model.fit(x, x[:, :2], epochs=1, verbose=0, callbacks=[keras.callbacks.TensorBoard(logs)])
        model.evaluate(x, x[:, :2], verbose=0)
    keras.backend.clear_session()


@worker_shutting_down.connect
def _hand_back_jobs(**_: Any) -> None:
    """On a warm shutdown (SIGTERM to the worker), ask the pool's children to hand back their jobs.

    Celery would otherwise wait for a training job to end, however long it takes. A child that
    is training stops after its batch (``worker.watch.on_sigterm``); an idle one just exits.
    """
    for child in active_children():
        if child.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
