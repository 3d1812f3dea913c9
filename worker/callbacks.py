"""Keras callbacks and helpers that report a running job to the database."""

from __future__ import annotations

import threading
import time
from typing import Any

import keras

from shared import lifecycle


class EpochRecorder(keras.callbacks.Callback):
    """Records every finished epoch (all metrics Keras reports, and its duration) as it ends."""

    def __init__(self, url: str, job_id: str) -> None:
        super().__init__()
        self.url = url
        self.job_id = job_id
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        seconds = time.perf_counter() - self._started
        lifecycle.record_epoch(self.url, self.job_id, epoch + 1, dict(logs or {}), seconds)


class Heartbeat:
    """A background thread that keeps the job's heartbeat fresh while it trains."""

    def __init__(self, url: str, job_id: str, every: float = 15.0) -> None:
        self.url, self.job_id, self.every = url, job_id, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            lifecycle.heartbeat(self.url, self.job_id)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
