"""The submit check's own processes: a model is built and compiled there, never in the API.

Each API process keeps a few check processes (``TRAINQ_CHECK_PROCESSES``), started fresh with
``python -m shared.ml.check_process`` (never forked from a process that has TensorFlow), each
loading Keras and checking a small spec once before it takes a real one. A check is one JSON
line each way over the process's pipes. A process is bounded: its address space by
``RLIMIT_AS``, its resident memory watched from here while it checks (``check_memory_mb``), its
time by ``check_seconds``; one that goes over is ended and replaced, and the spec is refused
with a 422 that says so. At most ``check_processes + check_waiting`` submissions wait on the
pool at once; the next is answered 503 at once, so the API's threads stay free for status polls.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import queue
import select
import subprocess
import sys
import threading
import time
from typing import Any

from shared.errors import InvalidSpec, Unavailable

log = logging.getLogger(__name__)

# What the check process may map beyond its resident limit: TensorFlow reserves address space
# (thread stacks, its allocator's arenas) it never touches.
ADDRESS_SPACE_SLACK_MB = 4096
_WATCH_SECONDS = 0.02
# How long a fresh check process may take to load Keras and check its small spec.
READY_SECONDS = 180.0


def refusal(field: str, message: str) -> InvalidSpec:
    """The submit check's refusal: the field, and the message, in the one error shape."""
    return InvalidSpec(
        f"{field}: {message}",
        details={"field": field, "errors": [{"field": field, "message": message}]},
    )


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class _Process:
    """One check process and its pipes."""

    def __init__(self, memory_mb: int) -> None:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        env["TRAINQ_CHECK_MEMORY_MB"] = str(memory_mb)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shared.ml.check_process"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True,
        )  # fmt: skip
        self.ready = False
        self.starting = threading.Lock()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def end(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()

    def read_line(self, deadline: float, memory_mb: int) -> bytes | str | None:
        """The process's next line; "memory" or "time" when it went over, None if it died."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "time"
            readable, _, _ = select.select([fd], [], [], min(left, _WATCH_SECONDS))
            if readable:
                line = self.proc.stdout.readline()
                return line or None
            if _rss_mb(self.pid) > memory_mb:
                return "memory"
            if self.proc.poll() is not None:
                return None


class CheckPool:
    """A few check processes, replaced when they break a limit."""

    def __init__(self, processes: int, waiting: int, memory_mb: int, seconds: float) -> None:
        self.memory_mb, self.seconds = memory_mb, seconds
        self.idle: queue.Queue[_Process] = queue.Queue()
        self.slots = threading.BoundedSemaphore(processes + waiting)
        self.all: list[_Process] = []
        self.lock = threading.Lock()
        for _ in range(processes):
            self.idle.put(self._start())

    def _start(self) -> _Process:
        process = _Process(self.memory_mb)
        with self.lock:
            self.all.append(process)
        return process

    def _replace(self, process: _Process) -> None:
        process.end()
        with self.lock:
            if process in self.all:
                self.all.remove(process)
        self.idle.put(self._start())

    def warm_up(self) -> None:
        """Wait until every check process has loaded Keras (and checked a small spec)."""
        for process in list(self.all):
            self._until_ready(process, time.monotonic() + READY_SECONDS)

    def _until_ready(self, process: _Process, deadline: float) -> bool:
        with process.starting:  # the warm-up and a first check may wait for it together
            if not process.ready:
                process.ready = process.read_line(deadline, self.memory_mb) == b"ready\n"
            return process.ready

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        """The check process's answer to one request: {"ok": true} or {"error": {...}}."""
        if not self.slots.acquire(blocking=False):
            raise Unavailable(
                "the server is checking other submissions; submit again in a moment",
                retry_after=2,
            )
        try:
            try:
                process = self.idle.get(timeout=self.seconds + READY_SECONDS)
            except queue.Empty:
                raise Unavailable("no submit check process is free", retry_after=5) from None
            return self._run(process, request)
        finally:
            self.slots.release()

    def _run(self, process: _Process, request: dict[str, Any]) -> dict[str, Any]:
        started = time.monotonic()
        if not self._until_ready(process, started + READY_SECONDS):
            self._replace(process)
            raise Unavailable("the submit check could not start; try again", retry_after=5)
        assert process.proc.stdin is not None
        try:
            process.proc.stdin.write(json.dumps(request).encode() + b"\n")
            process.proc.stdin.flush()
        except OSError:
            self._replace(process)
            raise Unavailable("the submit check process ended; try again", retry_after=1) from None
        line = process.read_line(time.monotonic() + self.seconds, self.memory_mb)
        if isinstance(line, bytes):
            answer: dict[str, Any] = json.loads(line)
            if answer.get("replace"):  # it ran out of memory, and said so
                self._replace(process)
            else:
                self.idle.put(process)
            return answer
        self._replace(process)
        if line == "time":
            return {"limit": "time", "message": f"the check took longer than {self.seconds:g} s"}
        return {
            "limit": "memory",
            "message": f"building it took more than the {self.memory_mb} MB of memory this "
            "server gives one check",
        }

    def close(self) -> None:
        """End every check process."""
        with self.lock:
            processes, self.all = list(self.all), []
        for process in processes:
            process.end()


_pools: dict[tuple[int, int, int, float], CheckPool] = {}
_pools_lock = threading.Lock()


def pool(processes: int, waiting: int, memory_mb: int, seconds: float) -> CheckPool:
    """The process's pool for these limits, started on first use."""
    key = (processes, waiting, memory_mb, seconds)
    with _pools_lock:
        if key not in _pools:
            _pools[key] = CheckPool(processes, waiting, memory_mb, seconds)
        return _pools[key]


def _close_all() -> None:
    for each in list(_pools.values()):
        each.close()


atexit.register(_close_all)
