"""The OpenAPI 3.1 document, generated from the pydantic schemas, and a docs page to read it."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from importlib.metadata import version
from typing import Any

import swagger_ui_bundle
from flask import Blueprint, Response, send_from_directory
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from shared.errors import ErrorCode
from shared.models import JobStatus
from shared.spec import JobSpec

bp = Blueprint("openapi", __name__)


class ErrorDetail(BaseModel):
    """What went wrong, for a program (code) and for a person (message)."""

    code: ErrorCode
    message: str
    details: dict[str, Any]


class ErrorBody(BaseModel):
    """The one error shape of the API."""

    error: ErrorDetail


class Progress(BaseModel):
    """Epoch k of n, percent done and an estimate of the time left."""

    epoch: int
    epochs_done: int
    epochs: int
    percent: float
    eta_seconds: float | None
    eta: datetime | None
    text: str


class EpochRow(BaseModel):
    """One finished epoch: every metric Keras reported (null for NaN), and its duration."""

    epoch: int
    metrics: dict[str, float | None]
    duration_s: float


class ModelFiles(BaseModel):
    """The trained model's formats and where to download it."""

    formats: list[str]
    download: str


class JobSummary(BaseModel):
    """A job as listed and as answered at submit."""

    id: str
    name: str
    status: JobStatus
    progress: Progress
    error: str | None
    attempt: int
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    test_metrics: dict[str, float | None] | None


class Job(JobSummary):
    """A job with its spec, per-epoch history and model."""

    spec: JobSpec
    history: list[EpochRow]
    model: ModelFiles | None


class JobPage(BaseModel):
    """One page of the caller's jobs, newest first."""

    jobs: list[JobSummary]
    page: int
    per_page: int
    total: int
    pages: int


class PredictRequest(BaseModel):
    """Raw instances, as in the dataset (the job's scale is applied by the server)."""

    instances: list[Any] = Field(min_length=1)


class Prediction(BaseModel):
    """One instance's logits, softmax probabilities and most likely class."""

    model_config = ConfigDict(populate_by_name=True)
    logits: list[float]
    probabilities: list[float]
    class_: int = Field(alias="class")


class PredictResponse(BaseModel):
    """Predictions in the order of the instances."""

    job_id: str
    predictions: list[Prediction]


class Event(BaseModel):
    """A server-sent event's data: a status change or a finished epoch (id = SSE id)."""

    id: int
    job_id: str
    type: str = Field(description="status | epoch")
    created_at: datetime
    status: JobStatus | None = None
    epoch: int | None = None
    metrics: dict[str, float | None] | None = None
    duration_s: float | None = None
    error: str | None = None
    test_metrics: dict[str, float | None] | None = None


class Health(BaseModel):
    """The service's health."""

    status: str
    checks: dict[str, str]


MODELS: list[type[BaseModel]] = [
    JobSpec, ErrorBody, Job, JobSummary, JobPage, PredictRequest, PredictResponse, Event, Health,
]  # fmt: skip


def _ref(model: type[BaseModel] | str) -> dict[str, Any]:
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": f"#/components/schemas/{name}"}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): _json(ErrorBody, "an error, in the one error shape") for s in statuses}


JOB_ID = {"name": "job_id", "in": "path", "required": True,
          "schema": {"type": "string", "maxLength": 64}}  # fmt: skip


def _paths() -> dict[str, Any]:
    return {
        "/api/v1/jobs": {
            "post": {
                "summary": "Submit a training job",
                "operationId": "submitJob",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(JobSpec)}},
                },
                "responses": {
                    "202": _json(JobSummary, "the job, queued"),
                    **_errors(400, 401, 413, 422),
                },
            },
            "get": {
                "summary": "The caller's jobs, newest first",
                "operationId": "listJobs",
                "parameters": [
                    {
                        "name": "page",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
                    },
                    {
                        "name": "per_page",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                    },
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"type": "string", "enum": [s.value for s in JobStatus]},
                    },
                ],
                "responses": {"200": _json(JobPage, "one page of jobs"), **_errors(401, 422)},
            },
        },
        "/api/v1/jobs/{job_id}": {
            "get": {
                "summary": "A job: status, progress, history, test metrics, error",
                "operationId": "getJob",
                "parameters": [JOB_ID],
                "responses": {"200": _json(Job, "the job"), **_errors(401, 404)},
            }
        },
        "/api/v1/jobs/{job_id}/events": {
            "get": {
                "summary": "Live events (server-sent): status changes and finished epochs",
                "description": "Each event's `id` is its number within the job; send it back as "
                "`Last-Event-ID` to resume. Keep-alive comments every 15 s; the stream "
                "ends when the job has ended. Each `data` line is an `Event`.",
                "operationId": "jobEvents",
                "parameters": [
                    JOB_ID,
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "schema": {"type": "integer", "minimum": 0},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "text/event-stream of Event",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_errors(401, 404, 422),
                },
            }
        },
        "/api/v1/jobs/{job_id}/predict": {
            "post": {
                "summary": "Call the trained model: logits, probabilities, class",
                "operationId": "predict",
                "parameters": [JOB_ID],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(PredictRequest)}},
                },
                "responses": {
                    "200": _json(PredictResponse, "one prediction per instance"),
                    **_errors(400, 401, 404, 409, 413, 422),
                },
            },
        },
        "/api/v1/jobs/{job_id}/model": {
            "get": {
                "summary": "Download the trained model",
                "operationId": "downloadModel",
                "parameters": [
                    JOB_ID,
                    {
                        "name": "format",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["keras", "h5"]},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "the model file",
                        "content": {
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            }
                        },
                    },
                    **_errors(401, 404, 409, 422),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Health: the database and the broker",
                "operationId": "health",
                "security": [],
                "responses": {"200": _json(Health, "healthy"), "503": _json(Health, "unhealthy")},
            }
        },
    }


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The OpenAPI document (built once per process)."""
    _, schemas = models_json_schema(
        [(m, "validation" if m is JobSpec or m is PredictRequest else "serialization")
         for m in MODELS],
        ref_template="#/components/schemas/{model}",
    )  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "trainq",
            "version": version("trainq"),
            "description": "An asynchronous Keras training service.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


@bp.get("/openapi.json")
def openapi_json() -> dict[str, Any]:
    """The OpenAPI document."""
    return document()


DOCS = """<!doctype html>
<html><head><meta charset="utf-8"><title>trainq API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="docs"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#docs"});</script>
</body></html>
"""


@bp.get("/docs")
def docs() -> Response:
    """The API documentation page (Swagger UI, served from the swagger-ui-bundle package)."""
    return Response(DOCS, mimetype="text/html")


@bp.get("/docs/static/<path:filename>")
def docs_static(filename: str) -> Response:
    """Swagger UI's own files."""
    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=3600)
