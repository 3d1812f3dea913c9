"""Where a job's files live: one folder per job under the artifact root."""

from __future__ import annotations

import hashlib
from pathlib import Path

MODEL_FILES = {"keras": "model.keras", "h5": "model.h5"}


def job_dir(root: Path, job_id: str) -> Path:
    """The folder that holds one job's files."""
    return root / job_id


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tensorboard_dir(root: Path, job_id: str) -> Path:
    """Where a job's TensorBoard logs are written (train/ and validation/ event files)."""
    return job_dir(root, job_id) / "tensorboard"
