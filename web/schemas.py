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


class DatasetUsed(BaseModel):
    """A dataset a job read: by name (built-in) or id (uploaded), and its file's SHA-256."""

    name: str | None
    id: str | None
    sha256: str


class Versions(BaseModel):
    """The versions a job trained with."""

    python: str
    tensorflow: str
    keras: str
    numpy: str
    trainq: str


class Threads(BaseModel):
    """TensorFlow's thread pools where the job trained (0: TensorFlow's default)."""

    intra_op: int
    inter_op: int


class Provenance(BaseModel):
    """What a job trained with, as its worker recorded it when it started (its latest attempt)."""

    seed: int = Field(description="the seed it trained with (keras.utils.set_random_seed)")
    seed_from: str = Field(description="spec (the spec gave it) | worker (the worker picked it)")
    spec_sha256: str = Field(
        description="SHA-256 of the stored spec with this seed, as canonical JSON (keys "
        "sorted, no spaces, UTF-8)"
    )
    dataset: DatasetUsed
    validation_dataset: DatasetUsed | None = Field(
        description="fit.validation_data's dataset, or null"
    )
    versions: Versions
    threads: Threads
    host: str
    worker: str = Field(description="the worker process: host and pid")
    attempt: int
    started_at: Timestamp
    finished_at: Timestamp | None


class Job(JobSummary):
    """A job with its spec, per-epoch history and model; while queued, its place in the queue."""

    spec: dict[str, Any] = Field(
        description="the submitted JobSpec, as stored; an inline array (fit.sample_weight, "
        "fit.validation_data's x, y and sample_weight) as its shape, its number of values "
        "and a note, instead of the numbers"
    )
    history: list[EpochRow]
    model: ModelFiles | None
    provenance: Provenance | None = Field(
        description="what it trained with; null until its worker starts training it"
    )
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


class ProtocolError(BaseModel):
    """An error on the paths of TF Serving's REST API and the Open Inference Protocol, in their
    own shape."""

    error: str


class HeadPrediction(BaseModel):
    """One output for one instance: a classifier head's logits, softmax probabilities and most
    likely class, or another output's values."""

    model_config = ConfigDict(populate_by_name=True)
    logits: list[float] | None = None
    probabilities: list[float] | None = None
    class_: int | None = Field(default=None, alias="class")
    values: Any = Field(default=None, description="a head that is no classifier: its output")


class Prediction(HeadPrediction):
    """One instance: its one output's fields, or with several outputs each under its name."""

    outputs: dict[str, HeadPrediction] | None = Field(
        default=None, description="a model with several outputs: each output by its name"
    )


class PredictResponse(BaseModel):
    """Predictions in the order of the instances (each instance an object by input name for a
    model with several inputs)."""

    job_id: str
    predictions: list[Prediction]


class Event(BaseModel):
    """A server-sent event's data: a status change, a finished epoch or, of a batch
    prediction, a finished chunk (id = SSE id).

    A status event has ``status`` and, as it applies, ``attempt`` (running), ``reason`` (back
    in the queue), ``error`` (failed), ``test_metrics`` (succeeded) or ``model`` (cancelled:
    whether a model was kept); an epoch event has ``epoch``, ``metrics`` and ``duration_s``; a
    chunk event has ``chunk``, ``rows``, ``bad_rows`` and ``chunks_done``.
    """

    id: int
    job_id: str
    type: str = Field(description="status | epoch | chunk")
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
    chunk: int | None = Field(default=None, description="a chunk event's chunk (from 0)")
    rows: int | None = Field(default=None, description="a chunk event's rows")
    bad_rows: int | None = Field(default=None, description="a chunk event's bad rows")
    chunks_done: int | None = Field(default=None, description="chunks done with this one")


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
