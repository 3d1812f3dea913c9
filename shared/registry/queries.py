"""Reading the registry: a user's models, one model with its versions and aliases, and the
resolver that turns a name (with a version number or an alias) into the version to serve."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.errors import NotFound
from shared.models import ModelAlias, ModelVersion, RegisteredModel


@dataclass(frozen=True)
class ModelDetail:
    """A model with its versions (by number) and its aliases (alias -> version number)."""

    model: RegisteredModel
    versions: list[ModelVersion]
    aliases: dict[str, int]


def find_model(session: Session, user_id: int, name: str) -> RegisteredModel:
    """The user's model by name; another user's, or none, is NotFound."""
    row = session.scalar(
        select(RegisteredModel).where(
            RegisteredModel.owner_id == user_id, RegisteredModel.name == name
        )
    )
    if row is None:
        raise NotFound(f"no model named {name!r}", details={"name": name})
    return row


def resolve(
    session: Session,
    user_id: int,
    name: str,
    version: int | None = None,
    alias: str | None = None,
) -> ModelVersion:
    """The version of the user's model ``name`` to serve: ``version`` by number, or the one
    ``alias`` points at, or the latest version when neither is given; its ``job_id`` is the
    job whose model answers. One query, read afresh each call, so a moved alias is seen by the
    next request. Raises ``shared.errors.NotFound`` (404) for a model, version or alias that
    does not exist or belongs to somebody else."""
    query = (
        select(ModelVersion)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(RegisteredModel.owner_id == user_id, RegisteredModel.name == name)
    )
    if alias is not None:
        query = query.join(ModelAlias, ModelAlias.version_id == ModelVersion.id).where(
            ModelAlias.alias == alias
        )
    elif version is not None:
        query = query.where(ModelVersion.version == version)
    else:
        query = query.order_by(ModelVersion.version.desc()).limit(1)
    row = session.scalar(query)
    if row is None:
        raise _missing(session, user_id, name, version, alias)
    return row


def _missing(
    session: Session, user_id: int, name: str, version: int | None, alias: str | None
) -> NotFound:
    find_model(session, user_id, name)  # raises when the model itself is not there
    if alias is not None:
        return NotFound(f"model {name!r} has no alias {alias!r}", details={"alias": alias})
    if version is not None:
        return NotFound(f"model {name!r} has no version {version}", details={"version": version})
    return NotFound(f"model {name!r} has no versions", details={"name": name})


def list_models(session: Session, user_id: int) -> list[tuple[RegisteredModel, int, int | None]]:
    """The user's models by name, each with how many versions it has and its latest number."""
    counts = (
        select(
            ModelVersion.model_id,
            func.count(ModelVersion.id).label("n"),
            func.max(ModelVersion.version).label("latest"),
        )
        .group_by(ModelVersion.model_id)
        .subquery()
    )
    rows = session.execute(
        select(RegisteredModel, counts.c.n, counts.c.latest)
        .outerjoin(counts, counts.c.model_id == RegisteredModel.id)
        .where(RegisteredModel.owner_id == user_id)
        .order_by(RegisteredModel.name)
    )
    return [(m, int(n or 0), latest) for m, n, latest in rows]


def detail(session: Session, user_id: int, name: str) -> ModelDetail:
    """The user's model with its versions and aliases."""
    model = find_model(session, user_id, name)
    versions = list(
        session.scalars(
            select(ModelVersion)
            .where(ModelVersion.model_id == model.id)
            .order_by(ModelVersion.version)
        )
    )
    return ModelDetail(model, versions, aliases_of(session, model.id))


def aliases_of(session: Session, model_id: int) -> dict[str, int]:
    """A model's aliases and the version number each points at, by alias."""
    rows = session.execute(
        select(ModelAlias.alias, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
        .where(ModelAlias.model_id == model_id)
        .order_by(ModelAlias.alias)
    )
    return {alias: version for alias, version in rows}


def aliases_of_user(session: Session, user_id: int) -> dict[int, dict[str, int]]:
    """Every alias of the user's models: model id -> alias -> version number."""
    rows = session.execute(
        select(ModelAlias.model_id, ModelAlias.alias, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
        .join(RegisteredModel, RegisteredModel.id == ModelAlias.model_id)
        .where(RegisteredModel.owner_id == user_id)
        .order_by(ModelAlias.alias)
    )
    found: dict[int, dict[str, int]] = {}
    for model_id, alias, version in rows:
        found.setdefault(model_id, {})[alias] = version
    return found
