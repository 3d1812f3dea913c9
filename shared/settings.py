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
        default=Path("var"), description="Local state: database, artifacts, logs."
    )
    database_url: str = Field(default="", description="SQLAlchemy URL; default a SQLite file.")
    redis_url: str = "redis://localhost:6379/0"
    artifacts: Path = Field(default=Path(""), description="Where trained models are stored.")
    host: str = "127.0.0.1"
    port: int = 8000
    web_workers: int = 2
    web_threads: int = 8
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
    worker_concurrency: int = 1
    worker_spare: int = Field(
        default=1, ge=0, description="Worker processes kept warm beyond the training slots."
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
    model_cache_mb: int = Field(default=512, ge=1, description="Loaded models per API process.")
    auto_steps_per_execution: int = Field(
        default=32, ge=1, description="steps_per_execution when a spec leaves it unset; 1: off."
    )
    worker_slots: int = Field(
        default=0, ge=0, description="Training jobs at once on all workers; 0: worker_concurrency."
    )
    max_running_per_user: int = Field(default=2, ge=1, description="Running jobs per user.")
    max_epochs: int = Field(default=1000, ge=1)
    max_predict_instances: int = Field(default=10_000, ge=1)
    max_request_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    requeue_after_seconds: int = Field(default=60, ge=5, description="Re-send lost queued jobs.")
    reconcile_seconds: float = Field(default=15.0, gt=0, description="Reconciler period.")
    heartbeat_seconds: float = Field(default=15.0, gt=0, description="Running job heartbeat.")
    stale_seconds: float = Field(default=90.0, gt=0, description="Silent this long: worker lost.")
    max_attempts: int = Field(default=3, ge=1, description="Workers lost before a job fails.")
    max_job_seconds: int = Field(default=6 * 3600, ge=1, description="Longest time limit.")
    max_queued_jobs: int = Field(default=100, ge=1, description="Queued jobs per user at once.")
    submit_rate: int = Field(default=60, ge=1, description="Submissions per user per window.")
    submit_rate_window_seconds: int = Field(default=60, ge=1)
    datasets_dir: Path = Field(default=Path(""), description="Where uploaded datasets are kept.")
    max_dataset_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="Largest upload, its arrays uncompressed."
    )

    def model_post_init(self, _context: object) -> None:
        """Fill the defaults that depend on other settings."""
        if not self.worker_slots:
            self.worker_slots = self.worker_concurrency
        if not self.web_streams:
            self.web_streams = max(1, self.web_threads - 2)
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
