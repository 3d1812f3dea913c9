"""Watches one running job from a side thread: heartbeat, cancel requests, time limit, shutdown.

Nothing here imports Keras: the Celery parent process imports this module for its signal hooks.
The Keras callbacks that act on a watch live in ``worker.callbacks``.
"""

from __future__ import annotations

import enum
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TypeVar

from shared import artifacts
from shared.db import describe, patiently, sessions, unavailable
from shared.jobs import lifecycle
from shared.settings import Settings
from worker.uploads import Uploads

log = logging.getLogger(__name__)
T = TypeVar("T")

# Set when this training process is asked to stop (SIGTERM): the job in hand is handed back.
SHUTDOWN = threading.Event()
_ACTIVE = threading.Event()  # a job is training in this process

CANCEL_POLL_SECONDS = 0.5
# A job that does not stop within this long after its time limit (a batch that never ends)
# is failed from this thread and its process ended.
HARD_LIMIT_GRACE_SECONDS = 60.0


class Stop(enum.StrEnum):
    """Why training was asked to stop before its last epoch."""

    cancel = "cancel"
    shutdown = "shutdown"
    timeout = "timeout"
    nan = "nan"
    lost = "lost"  # the job is no longer ours (the reconciler gave it to another worker)


def worker_name() -> str:
    """This process as recorded on the job it runs: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Limited(Protocol):
    """What a job's time limit is read from (a JobSpec, or a batch prediction's)."""

    @property
    def time_limit_seconds(self) -> int | None: ...


def time_limit(settings: Settings, spec: Limited) -> int:
    """The job's time limit in seconds: its own, capped by the server's maximum."""
    own = spec.time_limit_seconds or settings.max_job_seconds
    return min(own, settings.max_job_seconds)


def checkpoint_dir(settings: Settings, job_id: str) -> Path:
    """Where a job's checkpoint lives while it is unfinished: one folder per job."""
    return artifacts.job_dir(settings.artifacts, job_id) / "checkpoint"


class Watch:
    """A job's watcher: beats its heart, notices cancel, timeout and shutdown, stops once."""

    def __init__(
        self, settings: Settings, job_id: str, spec: Limited, sweep_id: str | None = None
    ) -> None:
        self.db, self.job_id, self.worker = sessions(settings.database_url), job_id, worker_name()
        self.checkpoint_dir = checkpoint_dir(settings, job_id)
        self.settings = settings
        self.limit = time_limit(settings, spec)
        self.beat_every = settings.heartbeat_seconds
        # How long a write of this job waits for an unreachable database before it gives up.
        self.patience = settings.database_wait_seconds
        self.reason: Stop | None = None
        self.detail = ""
        # Training was stopped inside an epoch: that epoch is neither recorded nor checkpointed.
        self.interrupted = False
        # A sweep's trial (its sweep's id), and whether the sweep's pruner stopped it.
        self.sweep_id = sweep_id
        self.pruned = False
        # The last finished epoch (1-based) and its seconds, timed once by the checkpoint
        # callback and recorded with the epoch's metrics by the epoch recorder.
        self.finished: tuple[int, float] | None = None
        # Its checkpoints and logs on their way to a remote store while training goes on.
        self.uploads = Uploads(job_id)
        self._started = time.monotonic()
        self._previous: Any = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{job_id}", daemon=True)

    def stop(self, reason: Stop, detail: str = "") -> None:
        """Ask training to stop; the first reason given is the one that counts."""
        with self._lock:
            if self.reason is None:
                self.reason, self.detail = reason, detail
                log.info("job_id=%s stop requested: %s %s", self.job_id, reason, detail)

    def should_stop(self) -> bool:
        """Whether training should stop after the batch in progress."""
        if self.reason is None and SHUTDOWN.is_set():
            self.stop(Stop.shutdown, "the worker is shutting down")
        return self.reason is not None

    def patiently(self, call: Callable[[], T], what: str) -> T:
        """``call()``, waiting out an unreachable database for up to database_wait_seconds."""
        return patiently(call, within=self.patience, what=f"job_id={self.job_id} {what}")

    def _check_once(self, beat: bool) -> None:
        try:
            self._check_database(beat)
        finally:  # the time limit holds while the database is away too
            self._check_time()

    def _check_database(self, beat: bool) -> None:
        if beat:
            ours, cancel = lifecycle.heartbeat(self.db, self.job_id, self.worker)
            if not ours:
                self.stop(Stop.lost, "the job is no longer assigned to this worker")
        else:
            cancel = lifecycle.cancel_requested(self.db, self.job_id)
        if cancel:
            self.stop(Stop.cancel, "cancel requested")

    def _check_time(self) -> None:
        elapsed = time.monotonic() - self._started
        if elapsed > self.limit:
            self.stop(Stop.timeout, f"timeout: the job reached its time limit of {self.limit} s")
        if elapsed > self.limit + HARD_LIMIT_GRACE_SECONDS:
            log.error(
                "job_id=%s did not stop after its time limit; ending the process", self.job_id
            )
            try:
                lifecycle.fail(
                    self.db,
                    self.job_id,
                    f"timeout: the job reached its time limit of {self.limit} s "
                    "and did not stop at a batch boundary, so its process was ended",
                )
            finally:  # without the database, the reconciler ends the job once it is back
                os._exit(1)

    def _run(self) -> None:
        next_beat = time.monotonic() + self.beat_every
        down_since: float | None = None  # the database has not answered since
        while not self._done.wait(min(CANCEL_POLL_SECONDS, self.beat_every)):
            # While the database is away, every round tries the heartbeat: the first write that
            # goes through tells the reconciler at once that this worker is alive.
            beat = down_since is not None or time.monotonic() >= next_beat
            if beat:
                next_beat = time.monotonic() + self.beat_every
            try:
                self._check_once(beat)
            except Exception as exc:  # the next round tries again
                if not unavailable(exc):
                    log.warning("job_id=%s watch check failed", self.job_id, exc_info=True)
                elif down_since is None:
                    down_since = time.monotonic()
                    log.warning(
                        "job_id=%s the database is unavailable (%s); training goes on, its "
                        "heartbeat is written once the database is back", self.job_id,
                        describe(exc),
                    )  # fmt: skip
                continue
            if down_since is not None:
                log.info(
                    "job_id=%s the database answers again after %.1f s; heartbeat written",
                    self.job_id, time.monotonic() - down_since,
                )  # fmt: skip
                down_since = None

    def __enter__(self) -> Watch:
        # Installed here, not at process start: billiard sets its own SIGTERM handler in each
        # pool child after Celery's process-init hooks have run.
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, on_sigterm)
        _ACTIVE.set()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.uploads.wait()  # a job handed back or left to resume finds its last epoch stored
        self._done.set()
        self._thread.join(timeout=10)
        _ACTIVE.clear()
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def on_sigterm(signum: int, _frame: FrameType | None) -> None:
    """While a job trains: hand it back after this batch; a second SIGTERM ends the process."""
    if not _ACTIVE.is_set() or SHUTDOWN.is_set():
        log.warning("pid %s: second SIGTERM: exit now", os.getpid())
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    log.warning("pid %s: SIGTERM: the job in hand stops after this batch", os.getpid())
    SHUTDOWN.set()
