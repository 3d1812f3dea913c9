"""Uploaded datasets: an .npz checked without pickle, stored per owner, loaded by the worker.

Array names: ``x_train``, ``y_train`` and optionally ``x_test``, ``y_test``; for a model with
several inputs or outputs, ``x_train.<input name>`` (``y_train.<output name>``, ...) instead;
sample weights as ``sample_weight`` or ``sample_weight.<anything>`` (one weight per training
sample). Arrays are numeric (bool, int, uint, float), finite, with matching sample counts.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared import caches, storage
from shared.datasets import checks, mapped
from shared.datasets.builtin import Layout, Splits
from shared.datasets.spool import Spooled
from shared.db import sessions, transaction
from shared.errors import Conflict, DatasetUnavailable, NotFound
from shared.models import Dataset, Job, JobKind, JobStatus, User
from shared.settings import Settings

_NAME = checks.NAME


def check(
    content: bytes, limit: int, max_arrays: int = 32
) -> tuple[dict[str, dict[str, Any]], int, int | None]:
    """Check an upload held in bytes: per array its shape and dtype, the sample counts."""
    return checks.check_file(io.BytesIO(content), limit, max_arrays)


def layout(dataset: Dataset) -> Layout:
    """Shapes, dtypes and sample counts of an uploaded dataset, from its record."""
    x: dict[str, Any] = {}
    y: dict[str, Any] = {}
    weights: dict[str, int] = {}
    for key, meta in dataset.arrays.items():
        m = _NAME.match(key)
        assert m is not None
        shape, dtype = tuple(meta["shape"][1:]), meta["dtype"]
        if m["part"] == "x_train":
            x[m["sub"] or ""] = (shape, dtype)
        elif m["part"] == "y_train":
            y[m["sub"] or ""] = (shape, dtype)
        elif m["w"]:
            weights[key] = int(meta["shape"][0])
    return Layout(x, y, dataset.n_train, dataset.n_test, weights)


def create(
    session: Session, owner: User, name: str, spooled: Spooled, settings: Settings
) -> Dataset:
    """Check and store an upload spooled to disk; the caller commits. Nothing is kept if a
    check fails. The caller has admitted it (``shared.jobs.quotas.admit_upload``)."""
    limit = settings.max_dataset_bytes
    if spooled.size > limit:
        raise checks.bad(f"the file has {spooled.size} bytes; at most {limit}", limit=limit)
    with spooled.path.open("rb") as f:
        info, n_train, n_test = checks.check_file(f, limit, settings.max_dataset_arrays)
    dataset = Dataset(
        owner_id=owner.id, name=name[:200] or "dataset", path="", size_bytes=spooled.size,
        sha256=spooled.sha256, arrays=info, n_train=n_train, n_test=n_test,
    )  # fmt: skip
    session.add(dataset)
    session.flush()
    dataset.path = f"{dataset.id}.npz"
    # The object is whole in the store before the row is committed: a store that cannot be
    # reached is 503 and the caller's transaction, row and all, is rolled back.
    store = storage.datasets(settings, wait=storage.REQUEST_WAIT_SECONDS)
    store.put(spooled.path, dataset.path)  # moved into a local store, copied up to a bucket
    return dataset


def get(session: Session, owner: User, dataset_id: str) -> Dataset:
    """The caller's dataset; somebody else's is reported as not found."""
    found = session.scalar(
        select(Dataset).where(Dataset.id == dataset_id, Dataset.owner_id == owner.id)
    )
    if found is None:
        raise NotFound(f"no dataset {dataset_id!r}")
    return found


def for_job(session: Session, owner: User, dataset_id: str, field: str) -> Dataset:
    """The dataset a job names, if it is the owner's; else the job is refused."""
    try:
        return get(session, owner, dataset_id)
    except NotFound as exc:
        raise DatasetUnavailable(
            f"no uploaded dataset {dataset_id!r}; upload one with POST /api/v1/datasets",
            details={"field": field},
        ) from exc


def list_for(session: Session, owner: User, sha256: str | None = None) -> list[Dataset]:
    """The caller's datasets, newest first; with ``sha256``, those whose file has that hash."""
    query = select(Dataset).where(Dataset.owner_id == owner.id)
    if sha256 is not None:
        query = query.where(Dataset.sha256 == sha256)
    return list(session.scalars(query.order_by(Dataset.created_at.desc(), Dataset.id.desc())))


def delete(session: Session, owner: User, dataset_id: str, settings: Settings) -> None:
    """Delete a dataset and its file, unless a queued or running job reads it."""
    dataset = get(session, owner, dataset_id)
    active = session.scalars(
        select(Job).where(
            Job.owner_id == owner.id, Job.status.in_([JobStatus.queued, JobStatus.running])
        )
    )
    users = [j.id for j in active if dataset_id in _reads(j)]
    if users:
        raise Conflict(
            f"dataset {dataset_id} is used by {len(users)} queued or running job(s)",
            details={"jobs": users},
        )
    session.delete(dataset)
    session.flush()
    storage.datasets(settings, wait=storage.REQUEST_WAIT_SECONDS).delete(dataset.path)


def _reads(job: Job) -> set[str]:
    """The uploaded datasets a job reads: a training job's spec, a batch prediction's input."""
    from shared.spec.job import JobSpec

    if job.kind == JobKind.batch_predict:
        ref = job.spec.get("dataset") or {}
        return {str(ref["id"])} if ref.get("id") else set()
    return JobSpec.model_validate(job.spec).dataset_ids()


def in_store(settings: Settings, dataset_ids: Iterable[str]) -> None:
    """With a remote store, refuse a job whose uploaded datasets the store cannot show now:
    503 while it cannot be reached (the job would fail in its worker), 422 if one is gone."""
    if not storage.remote(settings):
        return
    store = storage.datasets(settings, wait=storage.REQUEST_WAIT_SECONDS)
    for dataset_id in sorted(dataset_ids):
        if not store.exists(f"{dataset_id}.npz"):
            raise DatasetUnavailable(
                f"the file of dataset {dataset_id} is missing from the store; upload it again",
                details={"field": "dataset.id"},
            )


def local_file(settings: Settings, dataset_id: str) -> Path:
    """An uploaded dataset's file on this host: in the local store itself, or this host's
    cached copy of the stored object (fetched once per content)."""
    store = storage.datasets(settings)
    key = f"{dataset_id}.npz"
    if store.local is not None:
        return store.local / key
    with transaction(sessions(settings.database_url)) as s:
        sha256 = s.scalar(select(Dataset.sha256).where(Dataset.id == dataset_id))
    if sha256 is None:
        raise DatasetUnavailable(f"dataset {dataset_id} has been deleted")
    return caches.Cache.of(settings, "datasets").fetch(store, key, sha256)


def load(path: Path, settings: Settings | None = None) -> Splits:
    """An uploaded dataset's arrays (read without pickle), as the worker trains on them: in
    memory, or read from disk by rows when the file is over ``TRAINQ_DATASET_STREAM_BYTES``."""
    if settings is not None and path.stat().st_size > settings.dataset_stream_bytes:
        arrays = mapped.arrays(settings, path)
    else:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    parts: dict[str, Any] = {}
    weights: dict[str, np.ndarray] = {}
    for key, array in arrays.items():
        m = _NAME.match(key)
        assert m is not None
        if m["w"]:
            weights[key] = array
        elif m["sub"]:
            parts.setdefault(m["part"], {})[m["sub"]] = array
        else:
            parts[m["part"]] = array
    return Splits(
        parts["x_train"], parts["y_train"], parts.get("x_test"), parts.get("y_test"), weights
    )
