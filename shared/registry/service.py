"""Changing the registry, each in the caller's transaction (it commits): register a job's model
as a model's next version, move an alias, delete an alias, a version or a whole model."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, exists, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.errors import Conflict, NotFound
from shared.jobs.queries import get_job
from shared.models import (
    JobStatus,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    User,
    utcnow,
)
from shared.registry import names
from shared.registry.queries import find_model, resolve

log = logging.getLogger(__name__)


def _final_metrics(job: Any) -> dict[str, Any]:
    """What the job measured at its end: the test split's metrics and its last epoch's."""
    last = job.epochs[-1] if job.epochs else None
    return {
        "test": dict(job.test_metrics or {}),
        "last_epoch": dict(last.metrics) if last is not None else {},
        "epochs": job.epochs_done,
    }


def _model_for(session: Session, owner: User, name: str) -> RegisteredModel:
    """The owner's model by name, made on its first version (two first registrations at once
    both find the one row: the loser's insert is rolled back to its savepoint)."""
    query = select(RegisteredModel).where(
        RegisteredModel.owner_id == owner.id, RegisteredModel.name == name
    )
    row = session.scalar(query)
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = RegisteredModel(owner_id=owner.id, name=name)
            session.add(row)
    except IntegrityError:
        row = session.scalar(query)
        assert row is not None
    return row


def register(session: Session, owner: User, name: str, job_id: str) -> ModelVersion:
    """Record the owner's succeeded job as the model's next version (the model made on its
    first): 404 for a job that is not theirs, 409 for one that has not succeeded."""
    names.check_model_name(name)
    job = get_job(session, owner, job_id, history=True)
    if job.status != JobStatus.succeeded:
        raise Conflict(
            f"job {job_id} is {job.status}; only a succeeded job's model can be registered",
            details={"status": str(job.status), "job_id": job_id},
        )
    artifact = next((a for a in job.artifacts if a.format == "keras"), None)
    if artifact is None:
        raise Conflict(f"job {job_id} kept no model file", details={"job_id": job_id})
    model = _model_for(session, owner, name)
    # The number is taken by one UPDATE: the row stays locked until commit, so two
    # registrations at once get two numbers, and a deleted version's number is never reused.
    session.execute(
        update(RegisteredModel)
        .where(RegisteredModel.id == model.id)
        .values(last_version=RegisteredModel.last_version + 1)
    )
    number = session.scalar(
        select(RegisteredModel.last_version).where(RegisteredModel.id == model.id)
    )
    assert number is not None
    row = ModelVersion(
        model_id=model.id,
        version=number,
        job_id=job.id,
        artifact_key=artifact.path,
        artifact_sha256=artifact.sha256,
        metrics=_final_metrics(job),
    )
    session.add(row)
    session.flush()
    log.info("model=%s version=%d job_id=%s registered", name, number, job.id)
    return row


def set_alias(session: Session, owner: User, name: str, alias: str, version: int) -> ModelVersion:
    """Point the alias at a version of the owner's model, made or moved by one upsert: a
    reader sees the old version or the new one, never none."""
    names.check_alias(alias)
    target = resolve(session, owner.id, name, version=version)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(ModelAlias).values(
        model_id=target.model_id, alias=alias, version_id=target.id, updated_at=utcnow()
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["model_id", "alias"],
            set_={"version_id": stmt.excluded.version_id, "updated_at": stmt.excluded.updated_at},
        )
    )
    log.info("model=%s alias=%s version=%d moved", name, alias, version)
    return target


def delete_alias(session: Session, owner: User, name: str, alias: str) -> None:
    """Remove an alias of the owner's model (404 if it has none by that name)."""
    model = find_model(session, owner.id, name)
    gone = session.execute(
        delete(ModelAlias).where(ModelAlias.model_id == model.id, ModelAlias.alias == alias)
    )
    if not gone.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"model {name!r} has no alias {alias!r}", details={"alias": alias})


def delete_version(session: Session, owner: User, name: str, version: int) -> None:
    """Remove a version no alias points at; 409 naming the aliases that do."""
    row = resolve(session, owner.id, name, version=version)
    aliased = exists().where(ModelAlias.version_id == row.id)
    try:
        with session.begin_nested():
            gone = session.execute(
                delete(ModelVersion).where(ModelVersion.id == row.id, ~aliased)
            ).rowcount  # type: ignore[attr-defined]
    except IntegrityError:  # an alias moved onto it meanwhile (committed while this waited)
        gone = 0
    if not gone:
        pointing = select(ModelAlias.alias).where(ModelAlias.version_id == row.id)
        held = list(session.scalars(pointing))
        raise Conflict(
            f"version {version} of model {name!r} is what {', '.join(held)} point(s) at: move or "
            "delete the alias first",
            details={"version": version, "aliases": held},
        )


def delete_model(session: Session, owner: User, name: str) -> None:
    """Remove the owner's model with its aliases and versions (the jobs stay)."""
    model = find_model(session, owner.id, name)
    session.execute(delete(ModelAlias).where(ModelAlias.model_id == model.id))
    session.execute(delete(ModelVersion).where(ModelVersion.model_id == model.id))
    session.execute(delete(RegisteredModel).where(RegisteredModel.id == model.id))
