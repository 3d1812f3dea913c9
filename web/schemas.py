"""The API's responses as pydantic models: the OpenAPI document is generated from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import ErrorCode
from shared.models import JobStatus


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


class QueueInfo(BaseModel):
    """Where a queued job stands: how many jobs start before it, and why it waits."""

    position: int
    reason: str


class Job(JobSummary):
    """A job with its spec, per-epoch history and model; while queued, its place in the queue."""

    spec: dict[str, Any]  # the submitted JobSpec, as stored
    history: list[EpochRow]
    model: ModelFiles | None
    queue: QueueInfo | None = None


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
