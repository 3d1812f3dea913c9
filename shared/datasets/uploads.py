"""Uploaded datasets: an .npz checked without pickle, stored per owner, loaded by the worker.

Array names: ``x_train``, ``y_train`` and optionally ``x_test``, ``y_test``; for a model with
several inputs or outputs, ``x_train.<input name>`` (``y_train.<output name>``, ...) instead;
sample weights as ``sample_weight`` or ``sample_weight.<anything>`` (one weight per training
sample). Arrays are numeric (bool, int, uint, float), finite, with matching sample counts.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared import caches, storage
from shared.datasets.builtin import Layout, Splits
from shared.db import sessions, transaction
from shared.errors import Conflict, DatasetUnavailable, InvalidInput, NotFound
from shared.models import Dataset, Job, JobStatus, User
from shared.settings import Settings

_NAME = re.compile(
    r"^(?:(?P<part>[xy]_(?:train|test))|(?P<w>sample_weight))(?:\.(?P<sub>\w{1,64}))?$"
)
ALLOWED = "x_train, y_train, x_test, y_test (each optionally .NAME) and sample_weight[.NAME]"


def _bad(message: str, field: str = "file", **details: Any) -> InvalidInput:
    return InvalidInput(message, details={"field": field, **details})


def _header(archive: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """An array's shape and dtype from its .npy header, before any of it is loaded."""
    with archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _fortran, dtype = read(f)
    return tuple(shape), dtype


def _entries(content: bytes) -> int | None:
    """How many members the zip directory's end record declares (None: no such record), read
    before the directory itself is."""
    end = content.rfind(b"PK\x05\x06", max(0, len(content) - 65557))
    if end < 0 or end + 22 > len(content):
        return None
    total: int = struct.unpack_from("<H", content, end + 10)[0]
    return total  # a zip64 archive says 0xFFFF here, which no limit admits


def _read(content: bytes, limit: int, max_arrays: int = 32) -> dict[str, np.ndarray]:
    declared_members = _entries(content)
    if declared_members is not None and declared_members > max_arrays:
        raise _bad(
            f"the archive holds {declared_members} members; a dataset has at most {max_arrays} "
            f"arrays ({ALLOWED})",
            limit=max_arrays,
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        infos = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise _bad("the file is not an .npz archive (np.savez / np.savez_compressed)") from exc
    if len(infos) > max_arrays:
        raise _bad(
            f"the archive holds {len(infos)} members; a dataset has at most {max_arrays} arrays",
            limit=max_arrays,
        )
    members = {i.filename: i.file_size for i in infos}
    if sum(members.values()) > limit:
        raise _bad(f"the arrays take {sum(members.values())} bytes uncompressed; at most {limit}")
    declared = 0
    for member in members:
        key = member.removesuffix(".npy")
        try:
            shape, dtype = _header(archive, member)
        except Exception as exc:
            raise _bad(f"{member!r} is not a NumPy array: {exc}", field=key) from exc
        if dtype.hasobject:
            raise _bad(
                f"array {key!r} holds Python objects, which cannot be read without pickle; "
                "send numbers only",
                field=key,
            )
        declared += int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if declared > limit:  # a header may promise more than the file holds
            raise _bad(f"the arrays take more than {limit} bytes; at most {limit}", field=key)
    arrays: dict[str, np.ndarray] = {}
    key = "file"
    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as data:
            for key in data.files:
                arrays[key] = data[key]
    except Exception as exc:
        raise _bad(f"array {key!r} cannot be read: {exc}", field=key) from exc
    return arrays


def _group(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    groups: dict[str, dict[str, np.ndarray]] = {}
    for key, array in arrays.items():
        m = _NAME.match(key)
        if m is None:
            raise _bad(f"unexpected array {key!r}; the names are {ALLOWED}", field=key)
        if array.dtype.kind not in "biuf" or array.dtype.hasobject:
            raise _bad(f"array {key!r} has dtype {array.dtype}; only numbers", field=key)
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise _bad(f"array {key!r} holds NaN or infinite values", field=key)
        if array.ndim == 0:
            raise _bad(f"array {key!r} is a scalar; one row per sample", field=key)
        if m["w"]:
            groups.setdefault("weights", {})[key] = array
        else:
            groups.setdefault(m["part"], {})[m["sub"] or ""] = array
    for part in ("x_train", "y_train", "x_test", "y_test"):
        if part in groups and "" in groups[part] and len(groups[part]) > 1:
            raise _bad(f"give {part} or named {part}.NAME arrays, not both", field=part)
    return groups


def check(
    content: bytes, limit: int, max_arrays: int = 32
) -> tuple[dict[str, dict[str, Any]], int, int | None]:
    """Check an upload: per array its shape and dtype, the train and test sample counts."""
    arrays = _read(content, limit, max_arrays)
    groups = _group(arrays)
    for part in ("x_train", "y_train"):
        if part not in groups:
            raise _bad(f"the archive has no {part}; the names are {ALLOWED}", field=part)
    if ("x_test" in groups) != ("y_test" in groups):
        raise _bad("give both x_test and y_test, or neither", field="x_test")
    counts: dict[str, int | None] = {}
    for split in ("train", "test"):
        sizes = {
            f"{part}{'.' + sub if sub else ''}": len(a)
            for part in (f"x_{split}", f"y_{split}")
            for sub, a in groups.get(part, {}).items()
        }
        if split == "train":
            sizes.update({k: len(a) for k, a in groups.get("weights", {}).items()})
        if len(set(sizes.values())) > 1:
            raise _bad(f"the {split} arrays have different lengths: {sizes}", field=f"x_{split}")
        counts[split] = next(iter(sizes.values()), None)
    for key, weight in groups.get("weights", {}).items():
        if weight.ndim != 1 or (weight < 0).any():
            raise _bad(f"{key} must be one non-negative number per training sample", field=key)
    if not counts["train"]:
        raise _bad("the training arrays are empty", field="x_train")
    info = {k: {"shape": list(a.shape), "dtype": str(a.dtype)} for k, a in arrays.items()}
    return info, int(counts["train"]), counts["test"]


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


def create(session: Session, owner: User, name: str, content: bytes, settings: Settings) -> Dataset:
    """Check and store an upload; the caller commits. Nothing is kept if a check fails. The
    caller has admitted it (``shared.jobs.quotas.admit_upload``)."""
    if len(content) > settings.max_dataset_bytes:
        raise _bad(f"the file has {len(content)} bytes; at most {settings.max_dataset_bytes}")
    info, n_train, n_test = check(content, settings.max_dataset_bytes, settings.max_dataset_arrays)
    dataset = Dataset(
        owner_id=owner.id, name=name[:200] or "dataset", path="", size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(), arrays=info, n_train=n_train, n_test=n_test,
    )  # fmt: skip
    session.add(dataset)
    session.flush()
    dataset.path = f"{dataset.id}.npz"
    # The object is whole in the store before the row is committed: a store that cannot be
    # reached is 503 and the caller's transaction, row and all, is rolled back.
    storage.datasets(settings, wait=storage.REQUEST_WAIT_SECONDS).put_bytes(dataset.path, content)
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


def list_for(session: Session, owner: User) -> list[Dataset]:
    """The caller's datasets, newest first."""
    query = select(Dataset).where(Dataset.owner_id == owner.id)
    return list(session.scalars(query.order_by(Dataset.created_at.desc(), Dataset.id.desc())))


def delete(session: Session, owner: User, dataset_id: str, settings: Settings) -> None:
    """Delete a dataset and its file, unless a queued or running job reads it."""
    from shared.spec.job import JobSpec

    dataset = get(session, owner, dataset_id)
    active = session.scalars(
        select(Job).where(
            Job.owner_id == owner.id, Job.status.in_([JobStatus.queued, JobStatus.running])
        )
    )
    users = [j.id for j in active if dataset_id in JobSpec.model_validate(j.spec).dataset_ids()]
    if users:
        raise Conflict(
            f"dataset {dataset_id} is used by {len(users)} queued or running job(s)",
            details={"jobs": users},
        )
    session.delete(dataset)
    session.flush()
    storage.datasets(settings, wait=storage.REQUEST_WAIT_SECONDS).delete(dataset.path)


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


def load(path: Path) -> Splits:
    """An uploaded dataset's arrays (read without pickle), as the worker trains on them."""
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
