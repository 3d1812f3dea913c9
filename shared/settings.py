"""One typed settings object, read once from TRAINQ_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Service settings; every field can be set as TRAINQ_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="TRAINQ_", extra="ignore")

    var_dir: Path = Field(
        default=Path("var"),
        description="Local state: the SQLite database, trained models, uploaded datasets, the "
        "first user's token (`<var_dir>/token`) and the runtime files of `trainq up`.",
    )
    database_url: str = Field(
        default="",
        description="Any SQLAlchemy URL (PostgreSQL: `postgresql+psycopg://user@host/db`); "
        "empty: the SQLite file `<var_dir>/trainq.db`.",
    )
    redis_url: str = Field(
        default="redis://localhost:6379/0",
        description="Redis: the Celery broker, and the event streams' wake-ups, the version "
        "stamps, the dispatcher's and reconciler's locks and the submission rate limit.",
    )
    artifacts: Path = Field(
        default=Path(""),
        description="Where trained models, checkpoints and TensorBoard logs are kept, one "
        "folder per job; empty: `<var_dir>/artifacts`.",
    )
    storage_url: str = Field(
        default="",
        description="The store for what a job keeps (models, checkpoints, TensorBoard logs, "
        "uploaded datasets): empty: the local folders `artifacts` and `datasets_dir`; or "
        "`s3://bucket/prefix` (credentials from `AWS_ACCESS_KEY_ID` and "
        "`AWS_SECRET_ACCESS_KEY`), whose `artifacts/` and `datasets/` hold them; the local "
        "folders then hold only caches and the files of the jobs training on this host.",
    )
    s3_endpoint_url: str = Field(
        default="",
        description="The S3 server of `storage_url` when it is not AWS (SeaweedFS, Garage, "
        "Ceph: `http://host:8333`); empty: AWS.",
    )
    storage_wait_seconds: float = Field(
        default=120.0,
        gt=0,
        description="How long a worker tries again, with backoff, to reach a store that does "
        "not answer (a checkpoint's or a model's upload) before the job fails saying so; an API "
        "request waits 5 s, then answers 503 unavailable.",
    )
    cache_mb: int = Field(
        default=4096,
        ge=1,
        description="Each host's local caches of what it reads from a remote store "
        "(`<var_dir>/cache/models` in the API, `<var_dir>/cache/datasets` in the workers, and "
        "there `<var_dir>/cache/datasets-mapped`, the extracted members of datasets over "
        "`TRAINQ_DATASET_STREAM_BYTES`), in MB each, least recently used evicted first.",
    )
    host: str = Field(default="127.0.0.1", description="Where `trainq up` serves the API.")
    port: int = Field(default=8000, description="The port `trainq up` serves the API on.")
    web_workers: int = Field(
        default=2, description="API processes (gunicorn workers) `trainq up` starts."
    )
    web_threads: int = Field(
        default=8,
        description="Threads per API process (gunicorn's gthread workers); an open event "
        "stream holds one.",
    )
    web_streams: int = Field(
        default=0,
        ge=0,
        description="Event streams one API process keeps open at once, so that its other "
        "threads stay free for short requests; 0: web_threads - 2 (at least 1).",
    )
    web_nice: int = Field(
        default=19,
        ge=0,
        le=19,
        description="CPU niceness of the API processes `trainq up` starts; training goes first.",
    )
    web_sched_idle: bool = Field(
        default=True,
        description="Run the API processes `trainq up` starts under Linux's SCHED_IDLE policy: "
        "on the cores training leaves free, and off a core at once when training wakes up.",
    )
    worker_concurrency: int = Field(
        default=1,
        description="Training jobs at once per worker (`trainq up` starts its worker with this "
        "many training processes, plus worker_spare); TensorFlow's threads are counted from "
        "it, and the slots (and GPU shares) a worker announces.",
    )
    worker_spare: int = Field(
        default=1,
        ge=0,
        description="Worker processes `trainq up` keeps warm (TensorFlow loaded) beyond the "
        "training slots, so that a job can start while a process is being replaced.",
    )
    worker_jobs_per_child: int = Field(
        default=50, ge=1, description="Jobs a worker process trains before a fresh one replaces it."
    )
    worker_max_memory_mb: int = Field(
        default=3072,
        ge=0,
        description="MB above which a worker process is replaced after a job; 0: never.",
    )
    tf_threads: int = Field(
        default=0,
        ge=0,
        description="Cores one training process's TensorFlow uses (ops side by side; one op on "
        "half of them); 0: the cores divided by worker_concurrency.",
    )
    warm_tf: bool = Field(
        default=True,
        description="Load TensorFlow and fit a throwaway model in each fresh worker process "
        "before it takes a job; off for the periodic worker, which trains nothing.",
    )
    model_cache_mb: int = Field(
        default=512,
        ge=1,
        description="MB of models (by file size) each API process keeps loaded for predict; "
        "the least recently used is evicted first.",
    )
    data_cache_mb: int = Field(
        default=512,
        ge=0,
        description="MB of datasets each training process keeps in memory between jobs "
        "(preprocessed, their validation and test rows in batches), so that the next job on "
        "the same data starts without that work; the least recently used is dropped first; "
        "0: none.",
    )
    auto_steps_per_execution: int = Field(
        default=32, ge=1, description="steps_per_execution when a spec leaves it unset; 1: off."
    )
    worker_slots: int = Field(
        default=0,
        ge=0,
        description="Training jobs at once on all workers together: the dispatcher hands out no "
        "more; 0: the slots the live workers announce (each its worker_concurrency), so a "
        "worker that joins adds its slots and one that stops announcing stops counting at once. "
        "A positive value is a fixed total, whatever workers run.",
    )
    gpus: str = Field(
        default="",
        description="This worker host's GPUs: their ids (`0,1`) or a count (`2`); empty: those "
        "`nvidia-smi -L` lists, or none. Each training slot owns an even share (the GPUs "
        "divided by worker_concurrency, left-overs unused) through CUDA_VISIBLE_DEVICES.",
    )
    max_gpus_per_job: int = Field(
        default=0,
        ge=0,
        le=16,
        description="Most GPUs a job may ask for (`resources.gpus`; 422 invalid_spec above it): "
        "the GPUs of the largest slot any worker of this service will have; 0: no GPU jobs.",
    )
    max_running_per_user: int = Field(
        default=2,
        ge=1,
        description="Jobs of one user holding worker slots at once; their other jobs wait even "
        "when slots are free.",
    )
    max_epochs: int = Field(
        default=1000,
        ge=1,
        description="Largest fit.epochs a spec may ask for (422 invalid_spec above it).",
    )
    max_predict_instances: int = Field(
        default=10_000,
        ge=1,
        description="Instances per predict request (422 invalid_input above it).",
    )
    batch_chunk_rows: int = Field(
        default=10_000,
        ge=100,
        le=100_000,
        description="Rows a batch prediction predicts and stores at a time, unless its request "
        "says (chunk_rows): a resumed one starts at its first unfinished chunk, and the worker "
        "holds one chunk's inputs and outputs at a time (the model is called on 8 times its "
        "training batch_size rows at most, so its activations stay within what training took).",
    )
    max_spec_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="Largest job spec a submit reads (413 payload_too_large above it): of a "
        "bigger body no more than this is read, and a string too long in it is 422 "
        "invalid_spec naming the field. Bigger data is an upload.",
    )
    max_request_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Largest request body (413 payload_too_large above it).",
    )
    max_json_depth: int = Field(
        default=64,
        ge=4,
        description="Deepest nesting of arrays and objects in a JSON body (422 above it, "
        "checked before the body is validated).",
    )
    max_json_string_chars: int = Field(
        default=1024,
        ge=16,
        description="Longest string or key in a JSON body, such as a layer's name (422 above "
        "it, checked before the body is validated).",
    )
    max_inline_values: int = Field(
        default=100_000,
        ge=1,
        description="Numbers a spec may carry inline, in fit.sample_weight and an inline "
        "fit.validation_data together (422 invalid_spec above it); more data is an upload.",
    )
    status_cache_mb: int = Field(
        default=32,
        ge=1,
        description="MB of job status answers (as JSON) each API process keeps for status polls; "
        "the oldest go first.",
    )
    web_streams_per_user: int = Field(
        default=0,
        ge=0,
        description="Event streams one user may hold open on one API process (429 rate_limited "
        "above it), so that one user never takes all of web_streams; 0: half of web_streams "
        "(at least 1).",
    )
    requeue_after_seconds: int = Field(
        default=60,
        ge=5,
        description="How long a job handed to the broker may stay queued before the reconciler "
        "checks that the broker still holds it, and sends it again if not.",
    )
    reconcile_seconds: float = Field(
        default=15.0, gt=0, description="How often the reconciler runs (under Celery beat)."
    )
    heartbeat_seconds: float = Field(
        default=15.0, gt=0, description="How often a running job's worker writes its heartbeat."
    )
    stale_seconds: float = Field(
        default=90.0,
        gt=0,
        description="A running job whose heartbeat is this old has lost its worker: the "
        "reconciler puts it back in the queue.",
    )
    database_wait_seconds: float = Field(
        default=300.0,
        ge=0,
        description="How long a worker waits for an unreachable database (to record an epoch, "
        "the resume or the job's result) while its job goes on; past it the worker gives the job "
        "up, its checkpoint kept: the reconciler requeues it once the database is back.",
    )
    max_attempts: int = Field(
        default=2,
        ge=1,
        description="Attempts a job gets: a job whose worker process is lost (killed, or out of "
        "memory) is tried again from its last finished epoch, saying why, until it has had this "
        "many; then it fails.",
    )
    max_job_seconds: int = Field(
        default=6 * 3600,
        ge=1,
        description="The longest time limit, and the limit of a job that sets none; a larger "
        "time_limit_seconds is refused at submit. The broker's visibility timeout stays above it.",
    )
    max_queued_jobs: int = Field(
        default=100,
        ge=1,
        description="Queued jobs per user at once (429 quota_exceeded above it).",
    )
    max_sweep_trials: int = Field(
        default=1000,
        ge=1,
        description="Trials one sweep may run (its max_trials; 422 above it). A sweep's queued "
        "trials count against max_queued_jobs like any job.",
    )
    submit_rate: int = Field(
        default=60,
        ge=1,
        description="Submissions per user per window (429 rate_limited above it).",
    )
    submit_rate_window_seconds: int = Field(
        default=60, ge=1, description="The sliding window of submit_rate, in seconds."
    )
    max_model_params: int = Field(
        default=500_000_000,
        ge=1,
        description="Largest model a spec may ask for, in parameters, counted at submit from the "
        "layers' configs and shapes before anything is built (422 invalid_spec naming the layer "
        "above it); ConvNeXtXLarge, the largest keras.applications model, has 350 million.",
    )
    max_model_mb: int = Field(
        default=8192,
        ge=1,
        description="MB a model's weights, their gradients and its optimizer's variables (Adam: "
        "two per weight) may take in float32, counted at submit before anything is built (422 "
        "invalid_spec naming the layer above it).",
    )
    max_activation_mb: int = Field(
        default=24576,
        ge=1,
        description="MB the outputs of all a model's layers together may take for one batch of "
        "fit.batch_size samples (what training keeps for the backward pass), counted at submit "
        "from the output shapes before anything is built (422 invalid_spec naming the layer "
        "above it).",
    )
    check_processes: int = Field(
        default=1,
        ge=0,
        description="Processes per API process that build and compile submitted models (the "
        "submit check), started fresh (never forked), so that a heavy check never holds the "
        "API's own memory, CPU or threads; 0: check in the API process itself.",
    )
    check_waiting: int = Field(
        default=2,
        ge=0,
        description="Submissions one API process lets wait for a free check process; more at "
        "once are answered 503 unavailable with Retry-After, so the API's threads stay free for "
        "status polls.",
    )
    check_memory_mb: int = Field(
        default=6144,
        ge=256,
        description="MB of memory (resident) one check process may use; one that goes above is "
        "ended and replaced, and the spec refused (422 invalid_spec).",
    )
    check_seconds: float = Field(
        default=120.0,
        gt=0,
        description="Seconds one submit check may take; a check process that takes longer is "
        "ended and replaced, and the spec refused (422 invalid_spec).",
    )
    check_cache_size: int = Field(
        default=1024,
        ge=0,
        description="Submit checks each API process remembers, by the hash of the spec and the "
        "dataset's shapes: an identical spec is checked once; 0: none.",
    )
    datasets_dir: Path = Field(
        default=Path(""),
        description="Where uploaded datasets are kept, one .npz each; empty: `<var_dir>/datasets`.",
    )
    max_dataset_bytes: int = Field(
        default=4 * 1024**3,
        ge=1024,
        description="Largest upload, its arrays counted uncompressed as they are read (422 "
        "invalid_input above it); its file is held to this too, plus 1 MiB of form (413 "
        "payload_too_large as it streams), not to max_request_bytes.",
    )
    upload_part_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Largest part of an upload in parts (PUT /api/v1/uploads/{id}/parts/{n}; "
        "413 above it).",
    )
    upload_expiry_seconds: int = Field(
        default=24 * 3600,
        ge=60,
        description="How long an upload in parts may sit untouched since its last part; then "
        "it is gone, its parts deleted when the next upload in parts starts on that API host.",
    )
    dataset_stream_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=0,
        description="An uploaded dataset's file above this size trains from its arrays on "
        "disk, read batch by batch (its members extracted once into the worker's cache); at or "
        "below it, from arrays in memory as Keras takes them.",
    )
    max_dataset_arrays: int = Field(
        default=32,
        ge=2,
        description="Arrays an uploaded .npz may hold, counted from its zip directory before any "
        "array is read (422 invalid_input above it).",
    )
    max_datasets_per_user: int = Field(
        default=50,
        ge=1,
        description="Uploaded datasets one user may keep (429 quota_exceeded above it).",
    )
    max_dataset_bytes_per_user: int = Field(
        default=16 * 1024**3,
        ge=1024,
        description="Bytes of uploaded datasets (their files) one user may keep (429 "
        "quota_exceeded above it).",
    )
    upload_rate: int = Field(
        default=10,
        ge=1,
        description="Uploads per user per window (429 rate_limited above it).",
    )
    upload_rate_window_seconds: int = Field(
        default=60, ge=1, description="The sliding window of upload_rate, in seconds."
    )
    webhooks_allow_private: bool = Field(
        default=False,
        description="Let webhooks point at loopback, private, link-local and unique-local "
        "addresses (refused otherwise, at registration and at each delivery; for tests and "
        "closed networks).",
    )
    webhooks_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="How long one delivery attempt of a webhook may take (connect and answer) "
        "before it counts as failed and is retried.",
    )
    webhooks_backoff_seconds: float = Field(
        default=5.0,
        gt=0,
        description="The wait before a failed webhook delivery's first retry; it doubles with "
        "each attempt (at most an hour), or is what the receiver's Retry-After asks.",
    )
    webhooks_retry_seconds: int = Field(
        default=86400,
        ge=0,
        description="How long a webhook delivery is retried after its event, before it is kept "
        "as failed.",
    )
    webhooks_keep_days: int = Field(
        default=30,
        ge=1,
        description="Days a webhook delivery is kept in its delivery log after it ended "
        "(succeeded or failed), and its event with it once no delivery of it is left; the "
        "periodic jobs delete older ones once an hour.",
    )
    webhooks_poll_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often the periodic jobs send the due webhook deliveries (Celery beat, "
        "on the trainq.webhooks queue).",
    )

    def model_post_init(self, _context: object) -> None:
        """Fill the defaults that depend on other settings."""
        if not self.web_streams:
            self.web_streams = max(1, self.web_threads - 2)
        if not self.web_streams_per_user:
            self.web_streams_per_user = max(1, self.web_streams // 2)
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.var_dir / 'trainq.db').resolve()}"
        if self.artifacts == Path(""):
            self.artifacts = self.var_dir / "artifacts"
        self.artifacts = self.artifacts.resolve()
        if self.datasets_dir == Path(""):
            self.datasets_dir = self.var_dir / "datasets"
        self.datasets_dir = self.datasets_dir.resolve()

    @property
    def token_file(self) -> Path:
        """Where the local launcher keeps the first user's token."""
        return self.var_dir / "token"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
