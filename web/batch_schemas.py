"""Batch predictions' response bodies, the builders that turn the core's rows into them, and
their part of the OpenAPI document (web.openapi joins it in)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import url_for
from pydantic import BaseModel, Field

from shared.batch.spec import BatchRequest
from shared.models import Job, JobStatus


class BadRow(BaseModel):
    """An input row that could not be predicted: its index in the input, and why."""

    index: int
    reason: str


class BatchProgress(BaseModel):
    """Chunks of rows predicted so far, of all of them."""

    chunks_done: int
    chunks_total: int
    percent: float


class BatchPrediction(BaseModel):
    """A batch prediction: a queued job predicting every row of a dataset with a model."""

    id: str
    name: str
    status: JobStatus
    model_job_id: str = Field(description="the training job whose model predicts")
    dataset: dict[str, str]
    split: str | None = None
    rows: int
    chunk_rows: int
    progress: BatchProgress
    bad_rows_count: int = Field(description="rows with a NaN or infinite input or output")
    bad_rows: list[BadRow] = Field(description="the first 100 bad rows (the result has all)")
    error: str | None = None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result_url: str | None = Field(
        default=None, description="the .npz with row i for input row i, once it has succeeded"
    )


class BatchPredictionList(BaseModel):
    """The caller's newest batch predictions."""

    batch_predictions: list[BatchPrediction]


def batch_body(
    job: Job, n_bad: int = 0, bad: list[dict[str, Any]] | None = None
) -> BatchPrediction:
    """A batch prediction as the API shows it."""
    spec = job.spec
    total = max(job.epochs_total, 1)
    done = job.status == JobStatus.succeeded
    return BatchPrediction(
        id=job.id, name=job.name, status=job.status, model_job_id=str(spec["model_job_id"]),
        dataset={k: str(v) for k, v in spec["dataset"].items()}, split=spec.get("split"),
        rows=int(spec["rows"]), chunk_rows=int(spec["chunk_rows"]),
        progress=BatchProgress(chunks_done=job.epochs_done, chunks_total=job.epochs_total,
                               percent=round(100.0 * job.epochs_done / total, 1)),
        bad_rows_count=n_bad, bad_rows=[BadRow.model_validate(b) for b in bad or []],
        error=job.error, cancel_requested=job.cancel_requested_at is not None,
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
        result_url=url_for("batch_predictions.result", batch_id=job.id) if done else None,
    )  # fmt: skip


REQUESTS: tuple[type[BaseModel], ...] = (BatchRequest,)
SCHEMAS: list[type[BaseModel]] = [BatchRequest, BatchPrediction, BatchPredictionList]
BATCH_ID = {"name": "batch_id", "in": "path", "required": True,
            "schema": {"type": "string", "maxLength": 64}}  # fmt: skip


def paths(
    ref: Callable[[Any], dict[str, Any]],
    json: Callable[[Any, str], dict[str, Any]],
    errors: Callable[..., dict[str, Any]],
    job_events: dict[str, Any],
) -> dict[str, Any]:
    """The batch predictions' routes (``job_events``: a job's stream, which a batch
    prediction's follows)."""
    npz = {"description": "the predictions: an .npz with row i for input row i, and bad_rows",
           "content": {"application/octet-stream": {"schema": {"type": "string",
                                                               "format": "binary"}}}}  # fmt: skip
    body = {"required": True, "content": {"application/json": {"schema": ref(BatchRequest)}}}
    base = "/api/v1/batch-predictions/{batch_id}"
    return {
        "/api/v1/batch-predictions": {
            "post": {
                "summary": "Predict every row of a dataset (or of one split) with a model, "
                "as a queued job",
                "operationId": "createBatchPrediction",
                "requestBody": body,
                "responses": {
                    "202": json(BatchPrediction, "queued"),
                    **errors(400, 401, 404, 409, 413, 422, 429, 503),
                },
            },
            "get": {
                "summary": "Your newest batch predictions",
                "operationId": "listBatchPredictions",
                "responses": {"200": json(BatchPredictionList, "yours"), **errors(401)},
            },
        },
        base: {
            "get": {
                "summary": "A batch prediction: status, chunks done of all, bad rows by index",
                "operationId": "getBatchPrediction",
                "parameters": [BATCH_ID],
                "responses": {"200": json(BatchPrediction, "it"), **errors(401, 404)},
            },
            "delete": {
                "summary": "Delete a finished batch prediction and its result (409 while it "
                "is queued or running: cancel it first)",
                "operationId": "deleteBatchPrediction",
                "parameters": [BATCH_ID],
                "responses": {"204": {"description": "deleted"}, **errors(401, 404, 409)},
            },
        },
        f"{base}/events": {
            "get": {
                **job_events,
                "summary": "Live events (server-sent): status changes and finished chunks",
                "description": "As a job's stream: each event's `id` is its number within the "
                "batch prediction (send it back as `Last-Event-ID` to resume); a `chunk` event "
                "per finished chunk with `chunk`, `rows`, `bad_rows` and `chunks_done`; the "
                "stream ends when the batch prediction has ended.",
                "operationId": "batchPredictionEvents",
                "parameters": [BATCH_ID, *job_events["parameters"][1:]],
            },
        },
        f"{base}/result": {
            "get": {
                "summary": "Download a succeeded batch prediction's .npz",
                "operationId": "getBatchPredictionResult",
                "parameters": [BATCH_ID],
                "responses": {"200": npz, **errors(401, 404, 409, 503)},
            },
        },
        f"{base}/cancel": {
            "post": {
                "summary": "Cancel a batch prediction: a queued one at once (200), a running "
                "one after its current chunk (202)",
                "operationId": "cancelBatchPrediction",
                "parameters": [BATCH_ID],
                "responses": {
                    "200": json(BatchPrediction, "cancelled"),
                    "202": json(BatchPrediction, "stops after its chunk"),
                    **errors(401, 404, 409),
                },
            },
        },
    }
