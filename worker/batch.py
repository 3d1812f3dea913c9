"""One batch prediction from start to end: its chunks predicted and stored one at a time (a
resumed one skips those already recorded), then joined into its result.

Each finished chunk is put in the store, then recorded with its event in one transaction:
a worker lost after the put and before the record predicts that chunk again, and one lost
after the record never does. A cancel, a shutdown or the time limit is noticed between chunks.
"""

from __future__ import annotations

import functools
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from shared import artifacts, storage
from shared.batch import service
from shared.db import transaction
from shared.jobs import lifecycle
from shared.jobs.dispatch import Publish
from shared.ml import batch_predict
from shared.models import Artifact, BatchChunk, Job
from shared.settings import Settings
from worker.outcomes import redispatch
from worker.watch import Stop, Watch

log = logging.getLogger(__name__)


ROWS_PER_STEP = 8


class _Limit:
    """What the watch reads of a request: its time limit (the server's)."""

    time_limit_seconds: int | None = None


def _model_file(watch: Watch, model_job_id: str) -> tuple[str, str, int, int]:
    """The model's file (key, SHA-256), this attempt's number, and the rows the model trained
    on a batch (``fit.batch_size``, within the activation budget checked at its submit)."""
    with transaction(watch.db) as s:
        found = s.execute(
            select(Artifact.path, Artifact.sha256).where(
                Artifact.job_id == model_job_id, Artifact.format == "keras"
            )
        ).one_or_none()
        attempt = s.scalar(select(Job.attempt).where(Job.id == watch.job_id)) or 1
        trained = s.scalar(select(Job.spec).where(Job.id == model_job_id)) or {}
    if found is None:
        raise FileNotFoundError(f"the model of job {model_job_id} is gone")
    batch = (trained.get("fit") or {}).get("batch_size") or 32
    return found[0], found[1], attempt, int(batch)


def _local_chunks(store: storage.Store, job_id: str, n: int, folder: Path) -> list[Path]:
    """The chunks' files on this host: in a local store itself, else fetched into ``folder``."""
    keys = [service.chunk_key(job_id, i) for i in range(n)]
    if store.local is not None:
        return [store.local / key for key in keys]
    paths = [folder / Path(key).name for key in keys]
    for key, path in zip(keys, paths, strict=True):
        store.get(key, path)
    return paths


def _stopped(settings: Settings, watch: Watch, publish: Publish | None) -> None:
    """End a batch prediction stopped between chunks: its recorded chunks are kept for a
    hand-back (the next worker goes on from them)."""
    job_id, db = watch.job_id, watch.db
    reason = watch.reason
    if reason == Stop.shutdown and lifecycle.cancel_requested(db, job_id):
        reason = Stop.cancel  # a cancel is final, never handed back
    if reason == Stop.cancel:
        watch.patiently(lambda: lifecycle.cancelled(db, job_id, {}), "cancelled")
        log.info("job_id=%s state=cancelled", job_id)
    elif reason == Stop.shutdown:
        if lifecycle.hand_back(db, job_id, watch.worker):
            log.info("job_id=%s state=queued handed back at shutdown", job_id)
            redispatch(settings, publish)
    elif reason != Stop.lost:
        watch.patiently(lambda: lifecycle.fail(db, job_id, watch.detail, worker=watch.worker),
                        "failed")  # fmt: skip


def _scratch(settings: Settings, job_id: str, attempt: int) -> Path:
    """This attempt's folder for its chunks' files: an earlier attempt's worker, lost but
    still at work on this host, writes and at its end deletes a folder of its own."""
    return artifacts.job_dir(settings.artifacts, job_id) / f".chunks-{attempt}"


def _predict_chunks(
    settings: Settings, watch: Watch, spec: dict[str, Any], predictor: batch_predict.Predictor,
    inputs: batch_predict.Inputs, attempt: int,
) -> bool:  # fmt: skip
    """Predict and record every chunk not recorded yet; False if stopped first."""
    job_id, store = watch.job_id, storage.artifacts(settings)
    size, n_chunks = int(spec["chunk_rows"]), -(-inputs.n // int(spec["chunk_rows"]))
    done = service.finished_chunks(watch.db, job_id)
    if done:
        log.info("job_id=%s resumed: %d of %d chunks done before", job_id, len(done), n_chunks)
    tmp = _scratch(settings, job_id, attempt)
    for index in range(n_chunks):
        if index in done:
            continue
        if watch.should_stop():
            return False
        started = time.monotonic()
        first = index * size
        count = min(size, inputs.n - first)
        chunk = predictor.chunk(inputs.read(first, count), first)
        path = tmp / f"{index:06d}.npz"
        batch_predict.write_chunk(path, chunk)
        key, length = service.chunk_key(job_id, index), path.stat().st_size
        digest = artifacts.sha256_of(path)
        store.put(path, key)
        shown = [{"index": i, "reason": r} for i, r in chunk.bad[: service.SHOWN_BAD_ROWS]]
        row = BatchChunk(
            job_id=job_id, chunk=index, first_row=first, rows=count, key=key, size_bytes=length,
            sha256=digest, bad_count=len(chunk.bad), bad_rows={"rows": shown}, attempt=attempt,
            duration_s=time.monotonic() - started,
        )  # fmt: skip
        if not watch.patiently(
            functools.partial(service.record_chunk, watch.db, job_id, watch.worker, row),
            f"chunk {index}",
        ):
            watch.stop(Stop.lost, "the job is no longer assigned to this worker")
            return False
        log.info("job_id=%s chunk=%d rows=%d attempt=%d predicted", job_id, index, count, attempt)
    return True


def run(settings: Settings, job_id: str, spec: dict[str, Any], publish: Publish | None) -> None:
    """Predict a batch prediction's rows (it is this worker's: started already)."""
    with Watch(settings, job_id, _Limit()) as watch:
        key, sha256, attempt, batch = _model_file(watch, str(spec["model_job_id"]))
        served = batch_predict.load_model(settings, key, sha256)
        # A call of the model predicts what it trained on in one step, 8 times over: without
        # gradients or the backward pass's activations that fits in what training took.
        predictor = batch_predict.Predictor(
            served, float(spec.get("scale", 1.0)), rows_per_call=ROWS_PER_STEP * batch
        )
        inputs = batch_predict.Inputs(settings, spec, predictor.inputs)
        if inputs.n:  # the outputs' shapes, for the result, even when every chunk is done
            predictor.shaped_by(inputs.read(0, 1))
        if not _predict_chunks(settings, watch, spec, predictor, inputs, attempt):
            _stopped(settings, watch, publish)
            return
        store = storage.artifacts(settings)
        folder = _scratch(settings, job_id, attempt)
        n_chunks = -(-inputs.n // int(spec["chunk_rows"]))
        with transaction(watch.db) as s:
            n_bad, _ = service.bad_rows(s, job_id)
        dest = artifacts.job_dir(settings.artifacts, job_id) / ".tmp-predictions.npz"
        batch_predict.assemble(dest, predictor.template, inputs.n, n_bad,
                               _local_chunks(store, job_id, n_chunks, folder))  # fmt: skip
        files = {service.RESULT: (service.result_key(job_id), dest.stat().st_size,
                                  artifacts.sha256_of(dest))}  # fmt: skip
        store.put(dest, service.result_key(job_id))
        done = watch.patiently(
            lambda: lifecycle.succeed(watch.db, job_id, None, files, worker=watch.worker),
            "succeeded",
        )
    shutil.rmtree(folder, ignore_errors=True)
    if done:
        store.delete_prefix(f"{job_id}/chunks")
        log.info("job_id=%s state=succeeded rows=%d bad_rows=%d", job_id, inputs.n, n_bad)
    else:
        log.warning("job_id=%s predicted but no longer ours; result not recorded", job_id)
