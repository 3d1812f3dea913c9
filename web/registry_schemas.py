"""The model registry's request and response bodies (published by the OpenAPI document), and
the builders that turn the core's rows into them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.models import ModelVersion as VersionRow
from shared.models import RegisteredModel
from shared.registry.queries import ModelDetail

MAX_VERSION = 2**31 - 1  # the database's INTEGER


class RegisterVersion(BaseModel):
    """A succeeded job of yours whose model becomes the model's next version."""

    model_config = ConfigDict(extra="forbid")
    job_id: str = Field(min_length=1, max_length=64)


class MoveAlias(BaseModel):
    """The version the alias points at from now on."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=MAX_VERSION)


class ModelVersion(BaseModel):
    """One version: the job that trained it, its final metrics, the aliases pointing at it."""

    name: str
    version: int
    job_id: str
    created_at: datetime
    metrics: dict[str, Any] = Field(
        description="as the job ended: `test` (the test split), `last_epoch`, `epochs`"
    )
    aliases: list[str]
    provenance: dict[str, Any] | None = Field(
        default=None, description="GET of one version: what its job trained with (seed, "
        "hashes, versions, host), as the job shows it",
    )  # fmt: skip


class ModelAlias(BaseModel):
    """An alias and the version it points at."""

    name: str
    alias: str
    version: int
    job_id: str


class ListedModel(BaseModel):
    """A registered model in the list: how many versions, the latest, its aliases."""

    name: str
    created_at: datetime
    versions: int
    latest_version: int | None
    aliases: dict[str, int] = Field(description="alias -> version")


class RegisteredModelDetail(BaseModel):
    """A registered model with every version (by number) and its aliases."""

    name: str
    created_at: datetime
    versions: list[ModelVersion]
    aliases: dict[str, int] = Field(description="alias -> version")


class ModelList(BaseModel):
    """Your registered models, by name."""

    models: list[ListedModel]


def version_body(name: str, row: VersionRow, aliases: dict[str, int]) -> ModelVersion:
    """A version as answered, with the aliases (of its model's) that point at it."""
    return ModelVersion(
        name=name, version=row.version, job_id=row.job_id, created_at=row.created_at,
        metrics=row.metrics, aliases=sorted(a for a, v in aliases.items() if v == row.version),
    )  # fmt: skip


def detail_body(found: ModelDetail) -> RegisteredModelDetail:
    """A model with its versions and aliases."""
    name = found.model.name
    return RegisteredModelDetail(
        name=name, created_at=found.model.created_at, aliases=found.aliases,
        versions=[version_body(name, v, found.aliases) for v in found.versions],
    )  # fmt: skip


def listed_body(
    model: RegisteredModel, count: int, latest: int | None, aliases: dict[str, int]
) -> ListedModel:
    """A model as the list shows it."""
    return ListedModel(name=model.name, created_at=model.created_at, versions=count,
                       latest_version=latest, aliases=aliases)  # fmt: skip


SCHEMAS: list[type[BaseModel]] = [
    RegisterVersion, MoveAlias, ModelVersion, ModelAlias, ListedModel, RegisteredModelDetail,
    ModelList,
]  # fmt: skip
REQUESTS: tuple[type[BaseModel], ...] = (RegisterVersion, MoveAlias)
