"""What a job ran with (its provenance), and the same work submitted again (a rerun).

As it starts training a job, its worker records the seed (the spec's, or one it picks, so that
the job can be run again), the SHA-256 of each dataset the job reads, the SHA-256 of the spec it
ran (canonical JSON, its seed filled in), the versions of Python and of the libraries that train,
TensorFlow's thread counts, the host and the worker process. A rerun is that spec again, with
that seed, on the same data found by its hash.
"""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared import stamps
from shared.artifacts import sha256_of
from shared.datasets import builtin
from shared.db import Sessions, transaction
from shared.errors import Conflict, DatasetUnavailable
from shared.models import Dataset, Job, JobStatus, utcnow
from shared.spec.fit import DatasetRef, ValidationData
from shared.spec.job import JobSpec

SEED_MAX = 2**31 - 1  # the largest seed a spec may give
# Where each dataset a spec reads is named: its provenance key -> the path in the stored spec.
PATHS = {"dataset": ("dataset",), "validation_dataset": ("fit", "validation_data", "dataset")}


def canonical_sha256(document: Any) -> str:
    """The SHA-256 of a JSON document as canonical JSON: keys sorted, no spaces, UTF-8."""
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


def seed_of(spec: JobSpec, recorded: dict[str, Any] | None) -> tuple[int, str]:
    """The seed a job trains with, and who chose it: its spec; else its worker, which keeps the
    seed an earlier attempt picked (a resumed job goes on with it) or picks a new one."""
    if spec.seed is not None:
        return spec.seed, "spec"
    if recorded is not None and isinstance(recorded.get("seed"), int):
        return int(recorded["seed"]), "worker"
    return secrets.randbelow(SEED_MAX + 1), "worker"


@lru_cache(maxsize=32)
def _files_sha256(files: tuple[tuple[str, int, int], ...]) -> str:
    if len(files) == 1:
        return sha256_of(Path(files[0][0]))
    digest = hashlib.sha256()  # several files: the hash of their hashes, in order
    for path, _mtime, _size in files:
        digest.update(bytes.fromhex(sha256_of(Path(path))))
    return digest.hexdigest()


def builtin_sha256(name: str) -> str:
    """The SHA-256 of a built-in dataset's file on this machine (for one of several files, of
    their SHA-256s in order); hashed once per file version in each process."""
    paths = builtin.paths(builtin.describe(name))
    return _files_sha256(tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths))


def _refs(spec: JobSpec) -> dict[str, DatasetRef]:
    refs = {"dataset": spec.dataset}
    vd = spec.fit.validation_data
    if isinstance(vd, ValidationData) and vd.dataset is not None:
        refs["validation_dataset"] = vd.dataset
    return refs


def _used(session: Session, ref: DatasetRef) -> dict[str, Any]:
    if ref.id is None:
        assert ref.name is not None
        return {"name": ref.name, "id": None, "sha256": builtin_sha256(ref.name)}
    sha256 = session.scalar(select(Dataset.sha256).where(Dataset.id == ref.id))
    if sha256 is None:
        raise DatasetUnavailable(f"dataset {ref.id} was deleted before the job could train on it")
    return {"name": None, "id": ref.id, "sha256": sha256}


def record(
    db: Sessions, job_id: str, worker: str, spec: JobSpec, runtime: dict[str, Any]
) -> int | None:
    """Record what the job trains with as this worker starts it (``runtime``: versions,
    threads, host from ``shared.ml.runtime``); the seed it trains with, or None if the job is no
    longer this worker's."""
    with transaction(db) as s:
        job = s.get(Job, job_id)
        assert job is not None
        seed, seed_from = seed_of(spec, job.provenance)
        spec_sha256 = canonical_sha256(job.spec | {"seed": seed})
        ran = (
            {"seed": seed, "seed_from": seed_from, "spec_sha256": spec_sha256,
             "validation_dataset": None}
            | {key: _used(s, ref) for key, ref in _refs(spec).items()}
            | runtime
            | {"worker": worker, "attempt": job.attempt, "started_at": utcnow().isoformat()}
        )  # fmt: skip
        done = s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.running, Job.worker == worker)
            .values(provenance=ran)
        )
        stamps.job_changed(s, job_id)  # what the API keeps of the job is out of date
        return seed if done.rowcount == 1 else None  # type: ignore[attr-defined]


def shown(job: Job) -> dict[str, Any] | None:
    """A job's provenance as the API shows it: as recorded, with when the job ended."""
    if job.provenance is None:
        return None
    return job.provenance | {"finished_at": job.finished_at}


def rerun_spec(session: Session, job: Job) -> JobSpec:
    """The spec of the job with the seed it trained with pinned and each dataset it read found
    by its SHA-256 among its owner's (Conflict if one is gone, or a built-in one changed)."""
    ran = job.provenance
    if ran is None:
        raise Conflict(
            f"job {job.id} is {job.status} and never started training: nothing records what it "
            "ran with, so it cannot be run again (submit its spec instead)",
            details={"status": str(job.status)},
        )
    stored = copy.deepcopy(job.spec) | {"seed": ran["seed"]}
    for key, ref in _refs(JobSpec.model_validate(job.spec)).items():
        used = ran.get(key)
        if used is not None:
            _same_data(session, job, stored, key, ref, used["sha256"])
    return JobSpec.model_validate(stored)


def _same_data(
    session: Session, job: Job, stored: dict[str, Any], key: str, ref: DatasetRef, sha256: str
) -> None:
    """Point the spec's dataset at ``key`` to one with the recorded hash, or refuse."""
    field = ".".join(PATHS[key])
    if ref.id is None:
        assert ref.name is not None
        try:
            now = builtin_sha256(ref.name)
            why = f"its file on this server has SHA-256 {now} now"
        except DatasetUnavailable as exc:
            now, why = None, exc.message
        if now != sha256:
            raise Conflict(
                f"job {job.id} trained on the built-in dataset {ref.name!r} with SHA-256 "
                f"{sha256}; {why}: the same data is not here to train on again",
                details={"field": field, "sha256": sha256},
            )
        return
    found = session.scalar(
        select(Dataset.id)
        .where(Dataset.owner_id == job.owner_id, Dataset.sha256 == sha256)
        .order_by((Dataset.id == ref.id).desc(), Dataset.created_at.desc())
        .limit(1)
    )
    if found is None:
        raise Conflict(
            f"the dataset job {job.id} trained on (upload {ref.id}, SHA-256 {sha256}) is gone: "
            "upload the same file again (trainq datasets upload FILE), then rerun the job",
            details={"field": field, "sha256": sha256},
        )
    *parents, last = PATHS[key]
    holder = stored
    for part in parents:
        holder = holder[part]
    holder[last] = {**holder[last], "id": found}
