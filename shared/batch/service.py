"""Batch predictions as users see them (submit, look up, list, delete) and the transactions a
worker writes (each finished chunk with its event). A batch prediction is a job of kind
``batch_predict``: the dispatcher, quotas, cancel, events and the reconciler treat it as any
job; its ``epochs_total`` and ``epochs_done`` count its chunks."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared import storage
from shared.batch.spec import BatchRequest
from shared.datasets import builtin, uploads
from shared.datasets.builtin import Layout
from shared.db import Sessions, transaction
from shared.errors import Conflict, DatasetUnavailable, InvalidInput, NotFound
from shared.jobs import queries
from shared.jobs.events import STATUS, add_event
from shared.models import (
    FINISHED,
    WITH_MODEL,
    Artifact,
    BatchChunk,
    Job,
    JobKind,
    JobStatus,
    User,
    utcnow,
)
from shared.settings import Settings

CHUNK = "chunk"  # the event of a finished chunk
RESULT = "npz"  # the result's format among the job's artifacts
SHOWN_BAD_ROWS = 100  # bad rows a status shows (the result holds every one)


def result_key(job_id: str) -> str:
    """Where a batch prediction's result is kept in the artifact store."""
    return f"{job_id}/predictions.npz"


def chunk_key(job_id: str, chunk: int) -> str:
    """Where one finished chunk's outputs are kept until the result is assembled."""
    return f"{job_id}/chunks/{chunk:06d}.npz"


def _model_job(session: Session, owner: User, req: BatchRequest) -> Job:
    """The finished training job whose model predicts: by id, or a registered version's."""
    job_id = req.job_id
    if job_id is None:
        from shared.registry.queries import resolve

        assert req.model is not None
        job_id = resolve(session, owner.id, req.model, req.version, req.alias).job_id
    job = queries.get_job(session, owner, job_id, history=False, artifacts=True)
    if job.status not in WITH_MODEL or not any(a.format == "keras" for a in job.artifacts):
        raise Conflict(
            f"{req.model_label} has no model to predict with (its job is {job.status})",
            details={"status": str(job.status)},
        )
    return job


def _layout(session: Session, owner: User, ref: dict[str, Any], field: str) -> Layout:
    if ref.get("name") is not None:
        return builtin.describe(str(ref["name"])).layout
    return uploads.layout(uploads.for_job(session, owner, str(ref["id"]), field))


def _rows(layout: Layout, split: str | None) -> int:
    if split == "test" and not layout.n_test:
        raise InvalidInput("the dataset has no test split", details={"field": "split"})
    if split == "test":
        return int(layout.n_test or 0)
    return layout.n_train + (0 if split == "train" else int(layout.n_test or 0))


def create(session: Session, owner: User, req: BatchRequest, settings: Settings) -> Job:
    """Record a queued batch prediction (the caller admitted it, commits, then dispatches)."""
    model_job = _model_job(session, owner, req)
    data = _layout(session, owner, req.dataset.model_dump(exclude_none=True), "dataset.id")
    trained = model_job.spec["dataset"]
    try:
        expected = _layout(session, owner, trained, "dataset.id").x
    except (DatasetUnavailable, NotFound):  # its data was deleted: the worker checks the model
        expected = data.x
    got = {k: list(v[0]) for k, v in data.x.items()}
    want = {k: list(v[0]) for k, v in expected.items()}
    # One input: its array's name does not matter (the worker gives it to the model's one
    # input), its shape does.
    one = len(got) == len(want) == 1
    if (list(got.values()) != list(want.values())) if one else (got != want):
        raise InvalidInput(
            f"the dataset's inputs {got} are not the model's {want}",
            details={"field": "dataset", "expected": want, "got": got},
        )
    if req.dataset.id is not None:
        uploads.in_store(settings, [req.dataset.id])
    rows = _rows(data, req.split)
    if rows == 0:
        raise InvalidInput("the dataset has no rows to predict", details={"field": "dataset"})
    chunk_rows = req.chunk_rows or settings.batch_chunk_rows
    stored = req.model_dump(mode="json", exclude_none=True)
    stored |= {"model_job_id": model_job.id, "rows": rows, "chunk_rows": chunk_rows,
               "scale": float(trained.get("scale", 1.0))}  # fmt: skip
    job = Job(
        owner_id=owner.id,
        kind=JobKind.batch_predict,
        name=req.name or f"batch prediction with {req.model_label}",
        spec=stored,
        status=JobStatus.queued,
        epochs_total=math.ceil(rows / chunk_rows),
        priority=req.priority,
    )
    session.add(job)
    session.flush()
    add_event(session, job.id, STATUS, {"status": "queued"})
    return job


def get(session: Session, owner: User, job_id: str) -> Job:
    """The caller's batch prediction; anything else is not found."""
    job = session.scalar(
        select(Job).where(
            Job.id == job_id, Job.owner_id == owner.id, Job.kind == JobKind.batch_predict
        )
    )
    if job is None:
        raise NotFound(f"no batch prediction {job_id!r}")
    return job


def list_for(session: Session, owner: User, limit: int = 100) -> list[Job]:
    """The caller's newest batch predictions."""
    return list(
        session.scalars(
            select(Job)
            .where(Job.owner_id == owner.id, Job.kind == JobKind.batch_predict)
            .order_by(Job.created_at.desc(), Job.id.desc())
            .limit(limit)
        )
    )


def bad_rows(session: Session, job_id: str) -> tuple[int, list[dict[str, Any]]]:
    """How many rows were bad so far, and the first of them (index and reason)."""
    total = session.scalar(
        select(func.coalesce(func.sum(BatchChunk.bad_count), 0)).where(BatchChunk.job_id == job_id)
    )
    shown: list[dict[str, Any]] = []
    if total:
        for rows in session.scalars(
            select(BatchChunk.bad_rows)
            .where(BatchChunk.job_id == job_id, BatchChunk.bad_count > 0)
            .order_by(BatchChunk.chunk)
        ):
            shown += rows["rows"][: SHOWN_BAD_ROWS - len(shown)]
            if len(shown) >= SHOWN_BAD_ROWS:
                break
    return int(total or 0), shown


def result(session: Session, owner: User, job_id: str) -> Artifact:
    """The result file of the caller's finished batch prediction; Conflict before it is."""
    job = get(session, owner, job_id)
    found = session.scalar(
        select(Artifact).where(Artifact.job_id == job_id, Artifact.format == RESULT)
    )
    if found is None:
        raise Conflict(
            f"batch prediction {job_id} is {job.status}; its result is there once it has succeeded",
            details={"status": str(job.status)},
        )
    return found


def delete(session: Session, owner: User, job_id: str, settings: Settings) -> None:
    """Delete a finished batch prediction and its files; Conflict while it may still run."""
    job = get(session, owner, job_id)
    if job.status not in FINISHED:
        raise Conflict(
            f"batch prediction {job_id} is {job.status}: cancel it first",
            details={"status": str(job.status)},
        )
    session.delete(job)
    session.flush()
    storage.artifacts(settings, wait=storage.REQUEST_WAIT_SECONDS).delete_prefix(job_id)


def finished_chunks(db: Sessions, job_id: str) -> dict[int, BatchChunk]:
    """The chunks already predicted (by an earlier attempt too), by number."""
    with transaction(db) as s:
        rows = s.scalars(select(BatchChunk).where(BatchChunk.job_id == job_id))
        return {row.chunk: row for row in rows}


def record_chunk(db: Sessions, job_id: str, worker: str, row: BatchChunk) -> bool:
    """Record a finished chunk with its event, only while the job is this worker's (False if
    not); once, however often it is tried."""
    with transaction(db) as s:
        ours = s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.running, Job.worker == worker)
            .values(heartbeat_at=utcnow())
        )
        if ours.rowcount != 1:  # type: ignore[attr-defined]
            return False
        seen = s.scalar(
            select(BatchChunk.id).where(BatchChunk.job_id == job_id, BatchChunk.chunk == row.chunk)
        )
        if seen is not None:
            return True
        s.add(row)
        s.flush()
        done = s.scalar(select(func.count()).where(BatchChunk.job_id == job_id)) or 0
        s.execute(update(Job).where(Job.id == job_id).values(epochs_done=done))
        add_event(s, job_id, CHUNK, {"chunk": row.chunk, "rows": row.rows,
                                     "bad_rows": row.bad_count, "chunks_done": done})  # fmt: skip
        return True
