"""ORM models: users and their tokens, jobs, per-epoch records, model artifacts, job events,
sweeps, the model registry."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_id() -> str:
    """A new random identifier (32 hex digits)."""
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Declarative base; timestamps are stored as UTC."""

    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class JobKind(enum.StrEnum):
    """What a job does: train a model, or predict a dataset with one (a batch prediction)."""

    train = "train"
    batch_predict = "batch_predict"


class JobStatus(enum.StrEnum):
    """A job's life: queued -> running -> succeeded | failed | cancelled | pruned (a sweep's
    trial its pruner stopped after an epoch: its model and history kept)."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    pruned = "pruned"


FINISHED = (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled, JobStatus.pruned)
# The statuses of a job whose model was kept at its end (a cancelled one's, when an epoch ended).
WITH_MODEL = (JobStatus.succeeded, JobStatus.pruned, JobStatus.cancelled)


class SweepStatus(enum.StrEnum):
    """A sweep's life: running -> succeeded (a trial has a value) | failed | cancelled."""

    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class Role(enum.StrEnum):
    """What a user may do."""

    user = "user"
    admin = "admin"


class User(Base):
    """A person who submits jobs."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16), default=Role.user)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship(back_populates="tokens")


def _spec_gpus(context: Any) -> int:
    """A new job's GPUs, read from its spec."""
    spec = context.get_current_parameters().get("spec") or {}
    return int((spec.get("resources") or {}).get("gpus", 0))


class Job(Base):
    """A training job: the spec a user submitted and what became of it."""

    __tablename__ = "jobs"
    # A trial number is taken once: two processes asking for the same trial cannot both add it.
    __table_args__ = (UniqueConstraint("sweep_id", "trial"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # A batch prediction is a job too (the dispatcher, quotas, cancel, events and resume treat
    # it as any): its spec is the request, its "epochs" the chunks of rows it predicts.
    kind: Mapped[JobKind] = mapped_column(
        Enum(JobKind, native_enum=False, length=16), default=JobKind.train,
        server_default=JobKind.train.value,
    )  # fmt: skip
    spec: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, native_enum=False, length=16), default=JobStatus.queued, index=True
    )
    epochs_total: Mapped[int] = mapped_column()
    epochs_done: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    test_metrics: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    attempt: Mapped[int] = mapped_column(default=0)
    worker: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    # The live worker the dispatcher handed it to (its Celery node name), when it chose one.
    sent_to: Mapped[str | None] = mapped_column(String(200), default=None)
    # GPUs the job asks for (its spec's resources.gpus), for the dispatcher to place it.
    gpus: Mapped[int] = mapped_column(default=_spec_gpus, server_default="0")
    # The first epoch (1-based) the latest attempt trained: above 1 when it resumed a checkpoint.
    first_epoch: Mapped[int | None] = mapped_column(default=None)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(default=None)
    # Within one user's jobs, higher priority starts first (then the oldest).
    priority: Mapped[int] = mapped_column(default=0, server_default="0")
    # A sweep's trial: the sweep, the trial's number in it (from 0), the values it tries (spec
    # path -> value) and what the sampler and pruner noted of it (Optuna's system attributes).
    sweep_id: Mapped[str | None] = mapped_column(
        ForeignKey("sweeps.id", ondelete="CASCADE"), default=None, index=True
    )
    trial: Mapped[int | None] = mapped_column(default=None)
    trial_params: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    trial_attrs: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # What its worker trained it with (seed, hashes, versions, host): shared.jobs.provenance.
    provenance: Mapped[dict[str, Any] | None] = mapped_column(default=None)

    epochs: Mapped[list[EpochRecord]] = relationship(
        back_populates="job", order_by="EpochRecord.epoch", cascade="all, delete-orphan"
    )
    artifacts: Mapped[list[Artifact]] = relationship(
        back_populates="job", cascade="all, delete-orphan"
    )


class EpochRecord(Base):
    """One finished epoch: every metric Keras reported, and how long it took."""

    __tablename__ = "epochs"
    __table_args__ = (UniqueConstraint("job_id", "epoch"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    epoch: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column()
    duration_s: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[datetime] = mapped_column(default=utcnow)

    job: Mapped[Job] = relationship(back_populates="epochs")


class Artifact(Base):
    """A stored model file of a job."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("job_id", "format"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    format: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    job: Mapped[Job] = relationship(back_populates="artifacts")


class Dataset(Base):
    """An uploaded .npz dataset: its arrays' shapes and dtypes, and a hash of its content."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64))
    arrays: Mapped[dict[str, Any]] = mapped_column()
    n_train: Mapped[int] = mapped_column()
    n_test: Mapped[int | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Event(Base):
    """One thing that happened to a job (a status change, a finished epoch), in order.

    ``seq`` counts a job's events from 1 without gaps; it is the server-sent event id that a
    client resumes from.
    """

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("job_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Sweep(Base):
    """Many trials of one base spec: a search space, an objective, a sampler and a pruner.

    ``body`` is the sweep as submitted; its trials are ordinary jobs (``Job.sweep_id``). The
    database is the one record of the trials: the sampler's and pruner's study is rebuilt
    from them each time it is asked (``shared.sweeps.engine``).
    """

    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    body: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[SweepStatus] = mapped_column(
        Enum(SweepStatus, native_enum=False, length=16), default=SweepStatus.running, index=True
    )
    max_trials: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(default=None)


class RegisteredModel(Base):
    """A model a user names (unique per user): numbered versions made from succeeded jobs, and
    aliases that point at one of them. ``last_version`` only grows: a deleted version's number
    is never given again."""

    __tablename__ = "registered_models"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    last_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersion(Base):
    """One version of a registered model: the job that trained it, its model file (key and
    SHA-256 in the store) and its final metrics as they were when it was registered."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column()
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    artifact_key: Mapped[str] = mapped_column(String(500))
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelAlias(Base):
    """A name for one version of a model ("champion"), moved by one upsert; the version it
    points at cannot be deleted (no cascade)."""

    __tablename__ = "model_aliases"
    __table_args__ = (UniqueConstraint("model_id", "alias"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), index=True
    )
    alias: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class BatchChunk(Base):
    """One finished chunk of a batch prediction: its rows, its stored outputs, its bad rows.

    A resumed batch prediction predicts only the chunks that have no row here.
    """

    __tablename__ = "batch_chunks"
    __table_args__ = (UniqueConstraint("job_id", "chunk"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    chunk: Mapped[int] = mapped_column(Integer)  # from 0; rows chunk * chunk_rows onwards
    first_row: Mapped[int] = mapped_column()
    rows: Mapped[int] = mapped_column()
    key: Mapped[str] = mapped_column(String(500))  # the chunk's outputs in the artifact store
    size_bytes: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64))
    # How many of its rows were bad, and the first of them: {"index": row, "reason": ...}.
    bad_count: Mapped[int] = mapped_column(default=0)
    bad_rows: Mapped[dict[str, Any]] = mapped_column()
    attempt: Mapped[int] = mapped_column()  # the job's attempt that predicted it
    duration_s: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[datetime] = mapped_column(default=utcnow)


class Webhook(Base):
    """A URL of a user's that is told of their jobs' and sweeps' state changes, signed with
    its own secret (Standard Webhooks)."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    # The event types it is sent ("job.succeeded", "job.*", ...); None: every one.
    events: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    description: Mapped[str] = mapped_column(String(500), default="")
    secret: Mapped[str] = mapped_column(String(100))  # "whsec_" + base64 of 32 random bytes
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookMessage(Base):
    """One event to tell webhooks of (the outbox), written in the transaction of the change it
    reports; its id is the ``webhook-id`` header, the same on every delivery of it."""

    __tablename__ = "webhook_messages"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # "msg_" + 32 hex digits
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One message to one webhook: pending (``next_attempt_at``), succeeded, or failed after
    its retries; a redelivery is a new row for the same message."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    webhook_id: Mapped[str] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_messages.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow, index=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    response_status: Mapped[int | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
