"""The API's responses as pydantic models: the one source of every response body.

The routes build their answers through these models (``web.responses.body``) and the OpenAPI
document (``web.openapi``) publishes their serialization schemas, so a response cannot say
other than the document. A field with a default is optional: it is sent only where the route
sets it (``exclude_unset``), and the document does not require it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from shared.errors import ErrorCode
from shared.models import JobStatus, Role, SweepStatus

# A timestamp as datetime.isoformat() writes it (UTC: "+00:00", as the API always has).
Timestamp = Annotated[
    datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


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
    eta: Timestamp | None
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
    created_at: Timestamp | None
    started_at: Timestamp | None
    finished_at: Timestamp | None
    test_metrics: dict[str, float | None] | None
    sweep_id: str | None = Field(description="the sweep this job is a trial of, or null")
    trial: int | None = Field(description="its trial number in the sweep (from 0), or null")


class ListedJob(JobSummary):
    """A job in a page of jobs; an administrator listing every user's jobs sees its owner."""

    owner: str | None = Field(
        default=None, description="the owner's name; only with all=true (administrators)"
    )


class QueueInfo(BaseModel):
    """Where a queued job stands: how many jobs start before it, and why it waits."""

    position: int
    reason: str


class Job(JobSummary):
    """A job with its spec, per-epoch history and model; while queued, its place in the queue."""

    spec: dict[str, Any] = Field(
        description="the submitted JobSpec, as stored; an inline array (fit.sample_weight, "
        "fit.validation_data's x, y and sample_weight) as its shape, its number of values "
        "and a note, instead of the numbers"
    )
    history: list[EpochRow]
    model: ModelFiles | None
    queue: QueueInfo | None = None


class CancelledJob(Job):
    """A job as answered to a cancel: cancelled (200), or asked to stop after its batch (202)."""

    cancel_requested: bool


class JobPage(BaseModel):
    """One page of the caller's jobs, newest first."""

    jobs: list[ListedJob]
    page: int
    per_page: int
    total: int
    pages: int


class PredictRequest(BaseModel):
    """Raw instances, as in the dataset (the job's scale is applied by the server)."""

    model_config = ConfigDict(extra="forbid")
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
    """A server-sent event's data: a status change or a finished epoch (id = SSE id).

    A status event has ``status`` and, as it applies, ``attempt`` (running), ``reason`` (back
    in the queue), ``error`` (failed), ``test_metrics`` (succeeded) or ``model`` (cancelled:
    whether a model was kept); an epoch event has ``epoch``, ``metrics`` and ``duration_s``.
    """

    id: int
    job_id: str
    type: str = Field(description="status | epoch")
    created_at: Timestamp
    status: JobStatus | None = None
    epoch: int | None = None
    metrics: dict[str, float | None] | None = None
    duration_s: float | None = None
    error: str | None = None
    test_metrics: dict[str, float | None] | None = None
    attempt: int | None = None
    reason: str | None = None
    model: bool | None = None
    trial: int | None = Field(
        default=None, description="in a sweep's stream: the trial whose event it is"
    )


class ArrayInfo(BaseModel):
    """One array of an uploaded dataset."""

    shape: list[int]
    dtype: str


class Dataset(BaseModel):
    """An uploaded dataset: its arrays' shapes and dtypes, sample counts and content hash."""

    id: str
    name: str
    size_bytes: int
    sha256: str
    arrays: dict[str, ArrayInfo]
    n_train: int
    n_test: int | None
    created_at: Timestamp


class DatasetList(BaseModel):
    """The caller's datasets, newest first."""

    datasets: list[Dataset]


class UploadStart(BaseModel):
    """An upload in parts to start: the file's size in bytes and the dataset's name."""

    model_config = ConfigDict(extra="forbid")

    size: int = Field(ge=1)
    name: str = Field(default="dataset", max_length=200)


class UploadPart(BaseModel):
    """A part that arrived: its number, size and SHA-256."""

    n: int
    size: int
    sha256: str


class UploadStatus(BaseModel):
    """An upload in parts: which parts arrived, the bytes of the size, when it expires."""

    id: str
    name: str
    size: int
    received_bytes: int
    parts: list[UploadPart]
    max_part_bytes: int
    expires_at: Timestamp


class TokenInfo(BaseModel):
    """The token in use (never the token itself: its prefix)."""

    id: int
    prefix: str
    created_at: Timestamp
    expires_at: Timestamp | None


class Limits(BaseModel):
    """The limits that apply to the caller, and how many of their jobs are queued."""

    max_queued_jobs: int
    queued_jobs: int
    submit_rate: int
    submit_rate_window_seconds: int
    max_epochs: int
    max_job_seconds: int


class Me(BaseModel):
    """Who the token belongs to, the token, and the caller's limits."""

    id: int
    name: str
    role: Role
    created_at: Timestamp
    token: TokenInfo
    limits: Limits


class Health(BaseModel):
    """The service's health: the database and the broker, and when the periodic jobs last ran
    (``late: ...`` makes the service unhealthy)."""

    status: str
    checks: dict[str, str]
    periodic: str | None = None


class SweepBest(BaseModel):
    """The best succeeded trial so far: its job, its values and its objective."""

    job_id: str
    trial: int
    params: dict[str, Any]
    value: float


class SweepObjective(BaseModel):
    """The recorded metric the trials are judged by, and which way is better."""

    metric: str
    direction: str


class SweepSummary(BaseModel):
    """A sweep as answered at submit and as listed."""

    id: str
    name: str
    status: SweepStatus
    trials: dict[str, int] = Field(description="the sweep's trials by job status")
    max_trials: int
    max_concurrent: int
    objective: SweepObjective
    sampler: str
    pruner: str
    best: SweepBest | None
    created_at: Timestamp
    finished_at: Timestamp | None


class SweepTrial(BaseModel):
    """One trial: its job, the values it tries, how far it got and its objective."""

    trial: int
    job_id: str
    status: JobStatus
    params: dict[str, Any]
    value: float | None = Field(description="the objective at its last recorded epoch")
    epochs_done: int
    epochs: int


class Sweep(SweepSummary):
    """A sweep with its base spec, its search space and every trial asked for so far."""

    spec: dict[str, Any]
    space: dict[str, Any]
    tried: list[SweepTrial] = Field(description="the trials asked for so far, by number")


class SweepList(BaseModel):
    """The caller's sweeps, newest first."""

    sweeps: list[SweepSummary]
