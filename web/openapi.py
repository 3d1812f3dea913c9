"""The OpenAPI 3.1 document, generated from the pydantic schemas, and a docs page to read it."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import version
from typing import Any

import swagger_ui_bundle
from flask import Blueprint, Response, send_from_directory
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.models import JobStatus
from shared.spec.job import JobSpec
from shared.sweeps.spec import SweepSpec
from web import (
    batch_schemas,
    bodies,
    compare,
    openapi_protocols,
    openapi_registry,
    openapi_webhooks,
    protocol_schemas,
    registry_schemas,
    webhook_schemas,
)
from web.schemas import (
    CancelledJob,
    Dataset,
    DatasetList,
    ErrorBody,
    Event,
    Health,
    Job,
    JobPage,
    JobSummary,
    Me,
    PredictRequest,
    PredictResponse,
    Sweep,
    SweepList,
    SweepSummary,
    UploadPart,
    UploadStart,
    UploadStatus,
)

bp = Blueprint("openapi", __name__)


MODELS: list[type[BaseModel]] = [
    JobSpec, ErrorBody, Job, JobSummary, JobPage, CancelledJob, PredictRequest, PredictResponse,
    Event, Dataset, DatasetList, Me, Health, SweepSpec, SweepSummary, Sweep, SweepList,
    UploadStart, UploadPart, UploadStatus,
]  # fmt: skip
# Published as validated; the rest as serialized.
REQUESTS = (JobSpec, PredictRequest, SweepSpec, UploadStart)


def _ref(model: type[BaseModel] | str) -> dict[str, Any]:
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": f"#/components/schemas/{name}"}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): _json(ErrorBody, "an error, in the one error shape") for s in statuses}


DATASET_ID = {"name": "dataset_id", "in": "path", "required": True,
              "schema": {"type": "string", "maxLength": 64}}  # fmt: skip
UPLOAD_ID = {"name": "upload_id", "in": "path", "required": True,
             "schema": {"type": "string", "maxLength": 64}}  # fmt: skip
PART_N = {"name": "n", "in": "path", "required": True,
          "schema": {"type": "integer", "minimum": 1, "maximum": 10000}}  # fmt: skip


def _created(name: str, description: str) -> dict[str, Any]:
    """A job list's time bound: a date, or a date and time (UTC without an offset)."""
    return {
        "name": name,
        "in": "query",
        "description": f"{description}: a date (2026-12-01, midnight UTC) or a date and time "
        "(2026-12-01T09:30:00Z; UTC without an offset)",
        "schema": {"type": "string", "pattern": f"^{bodies.TIME_PATTERN}$"},
    }


def _uploads() -> dict[str, Any]:
    """The routes of an upload in parts."""
    sha = {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}
    return {
        "/api/v1/uploads": {
            "post": {
                "summary": "Start an upload in parts: its size in bytes and the dataset's name",
                "operationId": "startUpload",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": _ref(UploadStart)}}},
                "responses": {"201": _json(UploadStatus, "the upload, no part yet"),
                              **_errors(400, 401, 413, 422, 429)},
            }
        },
        "/api/v1/uploads/{upload_id}": {
            "get": {
                "summary": "Which parts arrived (sizes and SHA-256): where to resume",
                "operationId": "getUpload",
                "parameters": [UPLOAD_ID],
                "responses": {"200": _json(UploadStatus, "the upload"), **_errors(401, 404)},
            },
            "delete": {
                "summary": "Give an upload up: its parts are deleted",
                "operationId": "deleteUpload",
                "parameters": [UPLOAD_ID],
                "responses": {"204": {"description": "deleted"}, **_errors(401, 404)},
            },
        },
        "/api/v1/uploads/{upload_id}/parts/{n}": {
            "put": {
                "summary": "Part n (1, 2, ...) of the file, the raw body; sent again, it "
                           "replaces the part",
                "operationId": "putUploadPart",
                "parameters": [UPLOAD_ID, PART_N],
                "requestBody": {"required": True, "content": {"application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"}}}},
                "responses": {"200": _json(UploadPart, "the part as kept"),
                              **_errors(400, 401, 404, 409, 413, 422)},
            }
        },
        "/api/v1/uploads/{upload_id}/complete": {
            "post": {
                "summary": "Join the parts, check them as any upload, create the dataset",
                "operationId": "completeUpload",
                "parameters": [UPLOAD_ID],
                "requestBody": {"required": False, "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"sha256": sha}}}}},
                "responses": {"201": _json(Dataset, "the dataset"),
                              **_errors(400, 401, 404, 409, 422, 429)},
            }
        },
    }  # fmt: skip


# A spec that trains (the quickstart, one epoch): the docs page's example, and the one
# schemathesis submits first, so that a job exists for the operations that take one.
SPEC_EXAMPLE: dict[str, Any] = {
    "name": "quickstart",
    "dataset": {"name": "mnist-sample", "scale": 255.0},
    "model": {"layers": [
        {"class_name": "Flatten", "config": {"input_shape": [28, 28]}},
        {"class_name": "Dense", "config": {"units": 128, "activation": "relu"}},
        {"class_name": "Dropout", "config": {"rate": 0.2}},
        {"class_name": "Dense", "config": {"units": 10}},
    ]},
    "compile": {
        "optimizer": "adam",
        "loss": {"class_name": "SparseCategoricalCrossentropy", "config": {"from_logits": True}},
        "metrics": ["accuracy"],
    },
    "fit": {"epochs": 1, "batch_size": 32, "validation_split": 0.1},
    "seed": 42,
}  # fmt: skip

# One server-sent event, as OpenAPI describes an event stream's items (its fields are strings;
# ``data`` holds an Event as JSON). The stream opens with an event that sets only ``retry``.
SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "the Event's id, to send as Last-Event-ID"},
        "event": {"type": "string", "enum": ["status", "epoch"]},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": _ref(Event),
        },
        "retry": {"type": "integer", "description": "milliseconds to wait before reconnecting"},
    },
    "anyOf": [{"required": ["id", "event", "data"]}, {"required": ["retry"]}],
}

JOB_ID = {"name": "job_id", "in": "path", "required": True,
          "schema": {"type": "string", "maxLength": 64}}  # fmt: skip
SWEEP_ID = {"name": "sweep_id", "in": "path", "required": True,
            "schema": {"type": "string", "maxLength": 64}}  # fmt: skip

# A sweep's stream: its trials' events (each an Event with its trial), then one ``sweep``
# event whose data is the sweep as it ended.
SWEEP_EVENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "the event's id across the sweep"},
        "event": {"type": "string", "enum": ["status", "epoch", "sweep"]},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"anyOf": [_ref(Event), _ref(SweepSummary)]},
        },
        "retry": {"type": "integer", "description": "milliseconds to wait before reconnecting"},
    },
    "anyOf": [{"required": ["id", "event", "data"]}, {"required": ["retry"]}],
}

# The sweep's example: examples/sweep.json, two one-epoch trials.
SWEEP_EXAMPLE: dict[str, Any] = {
    "name": "learning rate",
    "spec": SPEC_EXAMPLE,
    "space": {"fit.batch_size": {"type": "categorical", "choices": [32, 64]}},
    "objective": {"metric": "val_loss", "direction": "minimize"},
    "sampler": "grid",
    "max_trials": 2,
    "max_concurrent": 1,
}


def _paths() -> dict[str, Any]:
    return {
        "/api/v1/jobs": {
            "post": {
                "summary": "Submit a training job",
                "operationId": "submitJob",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _ref(JobSpec), "example": SPEC_EXAMPLE}
                    },
                },
                "responses": {
                    "202": _json(JobSummary, "the job, queued"),
                    **_errors(400, 401, 413, 422, 429),
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
                    {
                        "name": "name",
                        "in": "query",
                        "description": "only jobs whose name holds this text (any case)",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                    },
                    _created("created_after", "only jobs created at or after this time"),
                    _created("created_before", "only jobs created before this time"),
                    {
                        "name": "all",
                        "in": "query",
                        "description": "administrators only: every user's jobs",
                        "schema": {"type": "string", "enum": ["true", "false"]},
                    },
                ],
                "responses": {"200": _json(JobPage, "one page of jobs"), **_errors(401, 422)},
            },
        },
        "/api/v1/jobs/check": {
            "post": {
                "summary": "Check a job spec without submitting it",
                "description": "The checks of submit that need no data (the schema, the "
                "allow-lists, the server's limits): 204, or the 422 submit would answer. "
                "`dataset` may be left out. Spends no submission rate.",
                "operationId": "checkJobSpec",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _ref(JobSpec), "example": SPEC_EXAMPLE}
                    },
                },
                "responses": {
                    "204": {"description": "the spec passes"},
                    **_errors(400, 401, 413, 422),
                },
            }
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
                "ends when the job has ended. Each `data` line is an `Event`. 503 with "
                "`Retry-After` while this API process has as many streams open as it keeps; "
                "429 while the caller has as many open on it as one user may.",
                "operationId": "jobEvents",
                "parameters": [
                    JOB_ID,
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "text/event-stream of Event",
                        "content": {"text/event-stream": {"schema": SSE_EVENT}},
                    },
                    **_errors(401, 404, 422, 429, 503),
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
        "/api/v1/jobs/{job_id}/tensorboard": {
            "get": {
                "summary": "The job's TensorBoard logs as a .tar.gz for `tensorboard --logdir`",
                "operationId": "downloadTensorboard",
                "parameters": [JOB_ID],
                "responses": {
                    "200": {
                        "description": "a gzip-compressed tar archive",
                        "content": {
                            "application/gzip": {"schema": {"type": "string", "format": "binary"}}
                        },
                    },
                    **_errors(401, 404),
                },
            }
        },
        "/api/v1/jobs/{job_id}/rerun": {
            "post": {
                "summary": "Run a job's work again: its spec, the seed it trained with, the same "
                "data",
                "description": "A new job of the caller's, submitted as `POST /api/v1/jobs` "
                "would be, with the job's stored spec, the seed its `provenance` records pinned, "
                "and each uploaded dataset it read found among the caller's by its SHA-256 "
                "(the same one, or one uploaded again with the same content). 409 if the job "
                "never started training, or if the data is gone or changed.",
                "operationId": "rerunJob",
                "parameters": [JOB_ID],
                "responses": {
                    "202": _json(JobSummary, "the new job, queued"),
                    **_errors(401, 404, 409, 422, 429),
                },
            }
        },
        "/api/v1/jobs/{job_id}/cancel": {
            "post": {
                "summary": "Cancel a job: a queued one at once, a running one after its batch",
                "operationId": "cancelJob",
                "parameters": [JOB_ID],
                "responses": {
                    "200": _json(CancelledJob, "cancelled"),
                    "202": _json(CancelledJob, "running; it stops after the batch in progress"),
                    **_errors(401, 404, 409),
                },
            }
        },
        "/api/v1/sweeps": {
            "post": {
                "summary": "Submit a sweep: trials of a base spec over a search space",
                "description": "The whole sweep is checked first (its paths, ranges, and its "
                "corner points built against the dataset): a refusal names the path. Each "
                "trial is a job with `sweep_id` and `trial`; a trial its pruner stops ends "
                "`pruned`.",
                "operationId": "submitSweep",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _ref(SweepSpec), "example": SWEEP_EXAMPLE}
                    },
                },
                "responses": {
                    "202": _json(SweepSummary, "the sweep, its first trials queued"),
                    **_errors(400, 401, 413, 422, 429),
                },
            },
            "get": {
                "summary": "Your sweeps, newest first",
                "operationId": "listSweeps",
                "responses": {"200": _json(SweepList, "your sweeps"), **_errors(401)},
            },
        },
        "/api/v1/sweeps/{sweep_id}": {
            "get": {
                "summary": "A sweep: trials by state, the best so far, every trial's values",
                "operationId": "getSweep",
                "parameters": [SWEEP_ID],
                "responses": {"200": _json(Sweep, "the sweep"), **_errors(401, 404)},
            }
        },
        "/api/v1/sweeps/{sweep_id}/cancel": {
            "post": {
                "summary": "Cancel a sweep: no more trials, queued ones at once, running ones "
                "after their batch",
                "operationId": "cancelSweep",
                "parameters": [SWEEP_ID],
                "responses": {
                    "200": _json(Sweep, "ended"),
                    "202": _json(Sweep, "its running trials stop after their batch"),
                    **_errors(401, 404),
                },
            }
        },
        "/api/v1/sweeps/{sweep_id}/events": {
            "get": {
                "summary": "Live events of every trial (server-sent), then the sweep's end",
                "description": "Each trial event's `data` is an `Event` with its `trial`; ids "
                "count across the sweep (send the last as `Last-Event-ID` to resume). The "
                "stream ends with one `sweep` event holding the sweep as it ended.",
                "operationId": "sweepEvents",
                "parameters": [
                    SWEEP_ID,
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "text/event-stream of trial events, then the sweep",
                        "content": {"text/event-stream": {"schema": SWEEP_EVENT}},
                    },
                    **_errors(401, 404, 422, 429, 503),
                },
            }
        },
        "/api/v1/me": {
            "get": {
                "summary": "Who the token belongs to, the token, and your limits",
                "operationId": "me",
                "responses": {"200": _json(Me, "you"), **_errors(401)},
            }
        },
        "/api/v1/datasets": {
            "post": {
                "summary": "Upload an .npz dataset (x_train, y_train, optionally x_test, ...)",
                "operationId": "uploadDataset",
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file"],
                                "properties": {
                                    "file": {"type": "string", "format": "binary"},
                                    "name": {"type": "string", "maxLength": 200},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": _json(Dataset, "the dataset"),
                    **_errors(400, 401, 413, 422, 429),
                },
            },
            "get": {
                "summary": "Your datasets, newest first",
                "operationId": "listDatasets",
                "parameters": [
                    {
                        "name": "sha256",
                        "in": "query",
                        "description": "only those whose file has this SHA-256 (hex)",
                        "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    }
                ],
                "responses": {
                    "200": _json(DatasetList, "your datasets"),
                    **_errors(401, 422),
                },
            },
        },
        "/api/v1/datasets/{dataset_id}": {
            "get": {
                "summary": "One of your datasets: shapes, dtypes, sample counts, sha256",
                "operationId": "getDataset",
                "parameters": [DATASET_ID],
                "responses": {"200": _json(Dataset, "the dataset"), **_errors(401, 404)},
            },
            "delete": {
                "summary": "Delete a dataset no queued or running job uses",
                "operationId": "deleteDataset",
                "parameters": [DATASET_ID],
                "responses": {"204": {"description": "deleted"}, **_errors(401, 404, 409)},
            },
        },
        **_uploads(),
        "/healthz": {
            "get": {
                "summary": "Health: the database, the broker and the periodic jobs",
                "operationId": "health",
                "security": [],
                "responses": {"200": _json(Health, "healthy"), "503": _json(Health, "unhealthy")},
            }
        },
    }


def _all_paths() -> dict[str, Any]:
    paths = _paths()
    predict = paths["/api/v1/jobs/{job_id}/predict"]["post"]
    return {
        **paths,
        **openapi_registry.paths(_ref, _json, _errors, predict),
        **openapi_protocols.paths(_ref, _json),
        **openapi_webhooks.paths(_ref, _json, _errors),
        **batch_schemas.paths(_ref, _json, _errors, paths["/api/v1/jobs/{job_id}/events"]["get"]),
        **compare.paths(_ref, _json, _errors),
    }


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The OpenAPI document (built once per process)."""
    requests = REQUESTS + registry_schemas.REQUESTS + protocol_schemas.REQUESTS
    requests += webhook_schemas.REQUESTS
    requests += batch_schemas.REQUESTS
    _, schemas = models_json_schema(
        [
            (m, "validation" if m in requests else "serialization")
            for m in MODELS
            + registry_schemas.SCHEMAS
            + protocol_schemas.SCHEMAS
            + webhook_schemas.SCHEMAS
            + batch_schemas.SCHEMAS
            + compare.SCHEMAS
        ],
        ref_template="#/components/schemas/{model}",
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "trainq",
            "version": version("trainq"),
            "description": "An asynchronous Keras training service.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": _all_paths(),
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
<script src="/docs/start.js"></script>
</body></html>
"""
# The page's start-up, a file of its own: its Content-Security-Policy allows no inline script.
START = 'SwaggerUIBundle({url: "/openapi.json", dom_id: "#docs"});\n'


@bp.get("/docs")
def docs() -> Response:
    """The API documentation page (Swagger UI, served from the swagger-ui-bundle package)."""
    return Response(DOCS, mimetype="text/html")


@bp.get("/docs/start.js")
def docs_start() -> Response:
    """The docs page's script: Swagger UI on the document."""
    return Response(START, mimetype="text/javascript")


@bp.get("/docs/static/<path:filename>")
def docs_static(filename: str) -> Response:
    """Swagger UI's own files."""
    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=3600)
