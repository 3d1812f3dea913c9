"""Compare: any of your jobs side by side, their specs' differences, metrics and curves."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field

from shared.jobs import compare as core
from web import bodies, responses
from web.auth import current_user
from web.extensions import db

bp = Blueprint("compare", __name__)


class CompareQuery(BaseModel):
    """``?jobs=A,B,C``: the jobs to compare."""

    model_config = ConfigDict(extra="forbid")
    jobs: str = Field(min_length=1, max_length=2000, description="job ids, comma-separated")


class MetricSummary(BaseModel):
    """One recorded metric of a job: its last recorded value, its best, and its curve."""

    final: float | None = Field(
        description="the last value recorded (with validation_freq, of the last epoch that "
        "validated)"
    )
    best: float | None = Field(description="the lowest for a loss or an error, else the highest")
    curve: list[float | None] = Field(description="by epoch, from the first")


class ComparedJob(BaseModel):
    """A job as the comparison shows it."""

    id: str
    name: str
    status: str
    test_metrics: dict[str, Any] | None
    metrics: dict[str, MetricSummary]


class SpecRow(BaseModel):
    """One path of the flattened specs (``compile.optimizer.config.learning_rate``), each job's
    value at it in the jobs' order (null where a job's spec has none), and whether they differ."""

    path: str
    values: list[Any]
    differs: bool


class Comparison(BaseModel):
    """Jobs side by side."""

    jobs: list[ComparedJob]
    spec: list[SpecRow]
    omitted: int = Field(
        0,
        description="spec paths left out: past 10,000 rows only the paths that differ are "
        "listed, at most 10,000",
    )


SCHEMAS: list[type[BaseModel]] = [Comparison]
JOBS = {"name": "jobs", "in": "query", "required": True,
        "description": "1 to 20 job ids, comma-separated",
        "schema": {"type": "string", "minLength": 1, "maxLength": 2000}}  # fmt: skip


@bp.get("")
def compare() -> ResponseReturnValue:
    """Jobs of yours side by side (1 to 20; another user's job is 404)."""
    query = bodies.query(CompareQuery)
    ids = [part.strip() for part in query.jobs.split(",") if part.strip()]
    found = core.compare(db(), current_user(), ids)
    return responses.body(Comparison.model_validate(found))


def paths(ref: Any, json: Any, errors: Any) -> dict[str, Any]:
    """The comparison's part of the OpenAPI document."""
    return {
        "/api/v1/compare": {
            "get": {
                "summary": "Your jobs side by side: the paths where their specs differ, every "
                "recorded metric's final and best value and its curve",
                "operationId": "compareJobs",
                "parameters": [JOBS],
                "responses": {
                    "200": json(Comparison, "the jobs side by side"),
                    **errors(401, 404, 422),
                },
            }
        }
    }
