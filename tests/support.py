"""Helpers for the tests: free ports, real Redis and PostgreSQL, real service processes."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import requests

from shared.commands.up import lower_priority

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("TRAINQ_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, not in a forked child


def dies_with_us(then: Callable[[], None] | None = None) -> Callable[[], None]:
    """A preexec_fn: the child is sent SIGTERM when the process that started it dies, so that a
    test process killed outright (an xdist worker, a timeout) leaves no service running; then
    the child does what `then` does."""

    def preexec() -> None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if then is not None:
            then()

    return preexec


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Any, timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll check() until it returns something truthy, or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A private redis-server on a free port (never the machine's shared one)."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed for the tests (apt-get install redis-server)"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, preexec_fn=dies_with_us(),
    )  # fmt: skip
    import redis

    url = f"redis://127.0.0.1:{port}/0"

    def _up() -> bool:
        try:
            return bool(redis.Redis.from_url(url).ping())
        except redis.ConnectionError:
            return False

    try:
        wait_until(_up, 10, "redis-server")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A throwaway PostgreSQL database, dropped afterwards."""
    name = f"trainq_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        yield f"{base}/{name}"
    finally:
        from shared.db import _engines

        for url in [u for u in _engines if name in u]:
            _engines.pop(url).dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def service_env(db_url: str, redis_url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for service processes pointed at the test's database, broker and folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINQ_")}
    env.update(
        TRAINQ_DATABASE_URL=db_url,
        TRAINQ_REDIS_URL=redis_url,
        TRAINQ_VAR_DIR=str(var_dir),
        TRAINQ_ARTIFACTS=str(var_dir / "artifacts"),
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


class Service:
    """A real gunicorn API and a real Celery worker, as separate processes."""

    def __init__(self, db_url: str, redis_url: str, var_dir: Path, **env: str) -> None:
        self.db_url, self.redis_url, self.var_dir = db_url, redis_url, var_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = service_env(db_url, redis_url, var_dir, **env)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def _spawn(
        self, name: str, args: list[str], lower: Callable[[], None] | None = None, **env: str
    ) -> None:
        log = self.var_dir / f"{name}.log"
        self.logs[name] = log
        with log.open("ab") as out:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", *args], cwd=ROOT, env={**self.env, **env}, stdout=out,
                stderr=subprocess.STDOUT, preexec_fn=dies_with_us(lower),
            )  # fmt: skip

    def start_web(
        self, workers: int = 1, threads: int = 8, nice: int = 0, idle: bool = False
    ) -> None:
        """gunicorn with threaded workers, as `trainq up` runs it (at its CPU priority too)."""
        self._spawn("web", ["gunicorn", "-c", str(ROOT / "web" / "gunicorn_conf.py"),
                            "web.wsgi:app", "--bind", f"127.0.0.1:{self.port}",
                            "--workers", str(workers), "--threads", str(threads),
                            "--no-control-socket"], lower_priority(nice, idle),
                    TRAINQ_WEB_WORKERS=str(workers), TRAINQ_WEB_THREADS=str(threads))  # fmt: skip
        wait_until(self._healthy, 60, "the API to answer")

    def start_worker(self, concurrency: int = 1) -> None:
        """A Celery worker for training jobs (prefork, one slot per process)."""
        self._spawn("worker", ["celery", "-A", "worker", "worker", "--queues", "celery",
                               "--concurrency", str(concurrency), "--loglevel", "INFO",
                               "--hostname", f"train-{self.port}@%h"])  # fmt: skip

    def start_webhooks(self, **env: str) -> None:
        """The light worker that sends webhook deliveries (its queue, trainq.webhooks, and the
        beat that asks for a round every TRAINQ_WEBHOOKS_POLL_SECONDS); ``env``: settings."""
        self._spawn("webhooks", ["celery", "-A", "worker", "worker", "--queues",
                                 "trainq.webhooks", "--pool", "solo", "--beat", "--schedule",
                                 str(self.var_dir / f"webhooks-beat-{self.port}"), "--loglevel",
                                 "INFO", "--hostname", f"webhooks-{self.port}@%h"],
                    TRAINQ_WARM_TF="0", **env)  # fmt: skip

    def _healthy(self) -> bool:
        try:
            return requests.get(self.url + "/healthz", timeout=10).status_code == 200
        except requests.RequestException:
            return False

    def log(self, name: str) -> str:
        """What a process printed so far."""
        return self.logs[name].read_text(errors="replace") if name in self.logs else ""

    def stop(self) -> None:
        """Stop every process, gently first."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
