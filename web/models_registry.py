"""The model registry: register a job's model as a version, move aliases, list, get, delete,
and predict by a model's name (its latest version, a version, or an alias)."""

from __future__ import annotations

import logging
from typing import TypeVar

from flask import Blueprint, url_for
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ValidationError

from shared.errors import InvalidInput, NotFound
from shared.models import Job
from shared.registry import names, queries, service
from web import bodies, jobs, responses
from web.auth import current_user
from web.errors import validation_details
from web.extensions import db
from web.registry_schemas import (
    MAX_VERSION,
    ModelAlias,
    ModelList,
    MoveAlias,
    RegisterVersion,
    detail_body,
    listed_body,
    version_body,
)

log = logging.getLogger(__name__)
bp = Blueprint("models", __name__)
B = TypeVar("B", bound=BaseModel)


def _body(model: type[B]) -> B:
    """The request's JSON body as ``model``; 422 naming the field otherwise."""
    raw = bodies.json_body(InvalidInput)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = validation_details(exc)[0]
        raise InvalidInput(f"{first['field']}: {first['message']}", details=first) from None


def _version(version: int) -> int:
    if not 1 <= version <= MAX_VERSION:  # a number no version can have, not a database error
        raise NotFound(f"no version {version}", details={"version": version})
    return version


@bp.get("")
def list_models() -> ResponseReturnValue:
    """Your registered models, by name: versions, the latest, aliases."""
    user = current_user()
    session = db()
    aliases = queries.aliases_of_user(session, user.id)
    rows = queries.list_models(session, user.id)
    return responses.body(
        ModelList(models=[listed_body(m, n, v, aliases.get(m.id, {})) for m, n, v in rows])
    )


@bp.get("/<name>")
def get(name: str) -> ResponseReturnValue:
    """A model: every version with its job and metrics, and its aliases."""
    user = current_user()
    return responses.body(detail_body(queries.detail(db(), user.id, names.check_model_name(name))))


@bp.delete("/<name>")
def delete_model(name: str) -> ResponseReturnValue:
    """Delete a model with its versions and aliases (the jobs and their models stay)."""
    session = db()
    service.delete_model(session, current_user(), names.check_model_name(name))
    session.commit()
    return "", 204


@bp.post("/<name>/versions")
def register(name: str) -> ResponseReturnValue:
    """Register a succeeded job's model as the model's next version (the model is made on
    its first): 201 with the version."""
    user = current_user()
    body = _body(RegisterVersion)
    session = db()
    row = service.register(session, user, name, body.job_id)
    session.commit()
    answer = version_body(name, row, {})
    location = url_for("models.get_version", name=name, version=row.version)
    return responses.body(answer), 201, {"Location": location}


@bp.get("/<name>/versions/<int:version>")
def get_version(name: str, version: int) -> ResponseReturnValue:
    """One version: its job, its metrics, the aliases that point at it."""
    user = current_user()
    session = db()
    row = queries.resolve(session, user.id, names.check_model_name(name), _version(version))
    answer = version_body(name, row, queries.aliases_of(session, row.model_id))
    answer.provenance = session.get_one(Job, row.job_id).provenance  # what made it, months on
    return responses.body(answer)


@bp.delete("/<name>/versions/<int:version>")
def delete_version(name: str, version: int) -> ResponseReturnValue:
    """Delete a version; 409 while an alias points at it."""
    session = db()
    service.delete_version(session, current_user(), names.check_model_name(name), _version(version))
    session.commit()
    return "", 204


@bp.put("/<name>/aliases/<alias>")
def set_alias(name: str, alias: str) -> ResponseReturnValue:
    """Point an alias at a version (made, or moved in one step: callers predicting by the
    alias get the new version from their next request)."""
    user = current_user()
    body = _body(MoveAlias)
    session = db()
    row = service.set_alias(session, user, names.check_model_name(name), alias, body.version)
    session.commit()
    _warm(row.job_id)
    return responses.body(
        ModelAlias(name=name, alias=alias, version=row.version, job_id=row.job_id)
    )


def _warm(job_id: str) -> None:
    """Load the alias's new model in this process now, so the first caller after the move
    does not wait for it; best effort: the move has been committed either way."""
    try:
        jobs.served_model(job_id)
    except Exception:
        log.warning("job_id=%s: its model could not be loaded ahead of use", job_id, exc_info=True)


@bp.delete("/<name>/aliases/<alias>")
def delete_alias(name: str, alias: str) -> ResponseReturnValue:
    """Remove an alias (the version it pointed at stays)."""
    session = db()
    service.delete_alias(session, current_user(), names.check_model_name(name), alias)
    session.commit()
    return "", 204


def _predict(
    name: str, version: int | None = None, alias: str | None = None
) -> ResponseReturnValue:
    # The version is resolved afresh for every request (one indexed query): a moved alias
    # answers with its new version from the next request on, in every API process.
    user = current_user()
    row = queries.resolve(db(), user.id, names.check_model_name(name), version, alias)
    return jobs.native_predict(row.job_id)


@bp.post("/<name>/predict")
def predict_latest(name: str) -> ResponseReturnValue:
    """Predict with the model's latest version: as the job's predict."""
    return _predict(name)


@bp.post("/<name>/versions/<int:version>/predict")
def predict_version(name: str, version: int) -> ResponseReturnValue:
    """Predict with one version of the model."""
    return _predict(name, version=_version(version))


@bp.post("/<name>/aliases/<alias>/predict")
def predict_alias(name: str, alias: str) -> ResponseReturnValue:
    """Predict with the version the alias points at now."""
    return _predict(name, alias=alias)
