"""What ``POST /api/v1/batch-predictions`` takes: a model, a dataset (or one of its splits) and
how many rows a chunk holds. Pure pydantic: no Keras, no database."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MIN_CHUNK_ROWS = 100
MAX_CHUNK_ROWS = 100_000


class BatchDataset(BaseModel):
    """A built-in dataset by name or an uploaded one by id (the model's job's scale applies)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")

    @model_validator(mode="after")
    def _one(self) -> BatchDataset:
        if (self.name is None) == (self.id is None):
            raise ValueError("give either name (a built-in dataset) or id (an uploaded one)")
        return self


class BatchRequest(BaseModel):
    """A batch prediction: the model by the job that trained it, or by registered name with a
    version or an alias; the rows of a dataset, of one split (``train``, ``test``) or all of
    them (its training rows, then its test rows)."""

    model_config = ConfigDict(extra="forbid")

    job_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    model: str | None = Field(default=None, min_length=1, max_length=200)
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    alias: str | None = Field(default=None, min_length=1, max_length=64)
    dataset: BatchDataset
    split: Literal["train", "test"] | None = None
    chunk_rows: int | None = Field(default=None, ge=MIN_CHUNK_ROWS, le=MAX_CHUNK_ROWS)
    name: str | None = Field(default=None, max_length=200)
    priority: int = Field(default=0, ge=-100, le=100)

    @model_validator(mode="after")
    def _one_model(self) -> BatchRequest:
        if (self.job_id is None) == (self.model is None):
            raise ValueError("give either job_id (a job's model) or model (a registered name)")
        if self.job_id is not None and (self.version is not None or self.alias is not None):
            raise ValueError("version and alias go with model, not with job_id")
        if self.version is not None and self.alias is not None:
            raise ValueError("give a version or an alias, not both")
        return self

    @property
    def model_label(self) -> str:
        """How the model is named in messages."""
        if self.job_id is not None:
            return f"job {self.job_id}"
        which = f"version {self.version}" if self.version else f"alias {self.alias or 'latest'}"
        return f"model {self.model!r} {which}"
