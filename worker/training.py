"""One training job from start to end: build, compile, fit, evaluate, store, report."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import keras

from shared import artifacts, storage
from shared.db import Sessions, describe, patiently, sessions, transaction, unavailable
from shared.jobs import lifecycle, provenance
from shared.jobs.dispatch import Publish
from shared.ml import fit_plan, runtime
from shared.ml.adapt import adapt
from shared.ml.build import (
    auto_steps_per_execution,
    build_model,
    build_state,
    compile_model,
)
from shared.models import Job, JobKind
from shared.settings import Settings
from shared.spec.job import JobSpec
from worker import batch, checkpoint
from worker.callbacks import EpochRecorder, LogSync, supervision
from worker.outcomes import advance_sweep, finish_stopped, redispatch
from worker.watch import Watch, checkpoint_dir, worker_name

log = logging.getLogger(__name__)
ADAPT_BATCH = 256  # rows a batch when a Normalization is adapted on the training data


def _describe(exc: BaseException) -> str:
    """Keras's own message, prefixed with the exception type."""
    message = str(exc).strip() or repr(exc)
    return f"{type(exc).__name__}: {message}"


class _H5OnPurpose(logging.Filter):
    """Leaves out Keras's warning, at every .h5 save, that the format is legacy: the worker
    writes it on purpose, beside the native .keras, as a download format."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("You are saving your model as an HDF5 file")


logging.getLogger("absl").addFilter(_H5OnPurpose())  # Keras warns through absl's logger


def _save(
    model: Any, folder: Path, store: storage.Store | None = None
) -> dict[str, tuple[str, int, str]]:
    """Save the model's files in the job's folder and put them in the store (by default the
    folder's parent); per format its key, size and SHA-256."""
    store = store or storage.Store(str(folder.parent))
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[str, int, str]] = {}
    with ThreadPoolExecutor(len(artifacts.MODEL_FILES), "save") as pool:  # a file's upload
        puts = []  # goes on while the next is written
        for fmt, filename in artifacts.MODEL_FILES.items():
            tmp = folder / f".tmp-{filename}"
            model.save(tmp)  # the suffix picks the format: .keras native, .h5 legacy HDF5
            key = f"{folder.name}/{filename}"
            files[fmt] = (key, tmp.stat().st_size, artifacts.sha256_of(tmp))
            puts.append(pool.submit(store.put, tmp, key))  # moved into place, or uploaded
        for put in puts:
            put.result()
    return files


def _train(
    settings: Settings, job_id: str, spec: JobSpec, sweep_id: str | None, publish: Publish | None
) -> None:
    db, ran_on = sessions(settings.database_url), runtime.describe()
    seed = patiently(
        lambda: provenance.record(db, job_id, worker_name(), spec, ran_on),
        within=settings.database_wait_seconds,
        what=f"job_id={job_id} provenance",
    )
    if seed is None:
        log.warning("job_id=%s is no longer ours before its training started; left alone", job_id)
        return
    # Every job is seeded (its worker picks a seed for a spec without one, and records it): on
    # CPU the same seed, data and threads train the same epochs, so a rerun repeats the job.
    spec = spec.model_copy(update={"seed": seed})
    keras.utils.set_random_seed(seed)
    checkpoint.pull(settings, job_id)  # trained on another host before: its checkpoint
    plan = fit_plan.make(settings, spec)
    model = build_model(spec, plan.input_shapes)
    plan.targets_as_outputs(model)
    plan.batch_held_out()
    if checkpoint.read_meta(checkpoint_dir(settings, job_id)) is None:  # else its weights hold them
        for name in adapt(model, lambda: plan.training_x(spec, ADAPT_BATCH)):
            log.info("job_id=%s Normalization %r adapted on the training data", job_id, name)
    steps = auto_steps_per_execution(
        spec, plan.steps_per_epoch(spec), settings.auto_steps_per_execution
    )
    compile_model(model, spec, steps_per_execution=steps)
    build_state(model, plan.first_row())
    log.info("job_id=%s steps_per_execution=%d", job_id, steps)
    board = keras.callbacks.TensorBoard(artifacts.tensorboard_dir(settings.artifacts, job_id))
    store = storage.artifacts(settings)
    with Watch(settings, job_id, spec, sweep_id) as watch:
        model.fit(
            plan.x,
            plan.y,
            callbacks=[
                *supervision(watch),
                *plan.callbacks,
                EpochRecorder(watch),
                board,
                *([LogSync(watch, board)] if storage.remote(settings) else []),
            ],
            **plan.kwargs,
        )
        if finish_stopped(settings, job_id, model, watch, _save, publish):
            return
        watch.uploads.drop("checkpoint")  # the job ends now: the model is what it keeps
        test_metrics = None
        if plan.test is not None:
            test_metrics = model.evaluate(
                *plan.test,
                batch_size=plan.test_batch_size,
                return_dict=True,
                verbose=0,
            )
        ours, _ = watch.patiently(
            lambda: lifecycle.heartbeat(watch.db, job_id, watch.worker), "heartbeat before saving"
        )
        if not ours:  # its files are another's now
            log.warning("job_id=%s finished training but is no longer ours; not saved", job_id)
            return
        files = _save(model, artifacts.job_dir(settings.artifacts, job_id), store)
        watch.uploads.wait("logs")  # its logs are in the store when it is seen to end
        # Recorded before the watch ends: its exit waits for a checkpoint upload under way.
        done = watch.patiently(
            lambda: lifecycle.succeed(
                watch.db, job_id, test_metrics, files, worker=watch.worker, pruned=watch.pruned
            ),
            "pruned" if watch.pruned else "succeeded",
        )
    if not done:
        log.warning(
            "job_id=%s finished training but is no longer ours; result not recorded", job_id
        )


def _spec(db: Sessions, job_id: str) -> tuple[JobKind, dict[str, Any], str | None]:
    with transaction(db) as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job.kind, job.spec, job.sweep_id


def _finished(db: Sessions, job_id: str) -> bool:
    """Whether the job has ended; False while the database cannot say (the checkpoint stays)."""
    try:
        return lifecycle.is_finished(db, job_id)
    except Exception as exc:
        if not unavailable(exc):
            raise
        return False


def run_job(settings: Settings, job_id: str, publish: Publish | None = None) -> None:
    """Run a job if it is ours to run; any error ends it failed with the reason.

    ``publish`` hands the slot the job frees to the next job at once (in a worker); without
    it the periodic round does."""
    db: Sessions = sessions(settings.database_url)
    worker = worker_name()
    stale = timedelta(seconds=settings.stale_seconds)
    wait = settings.database_wait_seconds
    started = patiently(
        lambda: lifecycle.start(
            db, job_id, worker, stale_after=stale, max_attempts=settings.max_attempts
        ),
        within=wait,
        what=f"job_id={job_id} start",
    )
    if not started:
        log.info("job_id=%s not started here: not queued, or taken by another worker", job_id)
        if _finished(db, job_id):
            checkpoint.discard(settings, job_id)
        return
    log.info(
        "job_id=%s state=running worker=%s CUDA_VISIBLE_DEVICES=%s",
        job_id, worker, os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)"),
    )  # fmt: skip
    sweep_id = None
    try:
        kind, spec, sweep_id = patiently(
            lambda: _spec(db, job_id), within=wait, what=f"job_id={job_id} spec"
        )
        if kind == JobKind.batch_predict:  # a queued job of the other kind: same slots, resume
            batch.run(settings, job_id, spec, publish)
        else:
            _train(settings, job_id, JobSpec.model_validate(spec), sweep_id, publish)
    except Exception as exc:  # any failure ends the job failed, never stuck in running
        if unavailable(exc):
            # Nothing can be written: the job stays running, its checkpoint kept, and the
            # reconciler requeues it once the database is back and its heartbeat is stale.
            log.error(
                "job_id=%s given up: the database was unavailable for %.0f s (%s)",
                job_id, wait, describe(exc),
            )  # fmt: skip
        else:
            log.exception("job_id=%s state=failed", job_id)
            lifecycle.fail(db, job_id, _describe(exc), worker=worker)
    finally:
        # Python's collector frees the job's objects in its own time; collecting them here
        # would hold the next job back by about 0.2 s.
        keras.backend.clear_session(free_memory=False)
        if _finished(db, job_id):  # kept only while the job may resume
            checkpoint.discard(settings, job_id)
            if sweep_id is not None:  # a trial ended: its sweep asks for the next one
                advance_sweep(settings, sweep_id)
            redispatch(settings, publish)  # its slot is free: the next job starts now
