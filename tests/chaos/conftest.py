"""A whole stack per test that the test may break: its own redis-server, API, workers, beat."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from sqlalchemy import select

from shared.commands.database import migrate
from shared.db import session_scope
from shared.models import Job, JobStatus
from tests.conftest import make_user
from tests.support import ROOT, dies_with_us, free_port, service_env, wait_until

# Small periods so that a lost worker or a lost message is noticed within seconds.
FAST = {
    "TRAINQ_HEARTBEAT_SECONDS": "0.5",
    "TRAINQ_STALE_SECONDS": "4",
    "TRAINQ_RECONCILE_SECONDS": "1",
    "TRAINQ_REQUEUE_AFTER_SECONDS": "5",
    "TRAINQ_WORKER_SLOTS": "2",
}


class RedisServer:
    """A redis-server without persistence that can be killed and started again, empty."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.port = workdir, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed for the chaos tests"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, preexec_fn=dies_with_us(),
        )  # fmt: skip
        wait_until(self._up, 10, "redis-server")

    def _up(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url).ping())
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        """SIGKILL: everything it held is gone."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)


class FreezableProxy:
    """A TCP proxy to Redis; frozen, it swallows what the client sends and answers nothing."""

    def __init__(self, target_port: int) -> None:
        self.frozen = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.target = target_port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                while self.frozen.is_set():
                    time.sleep(0.05)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                s.close()

    def close(self) -> None:
        self.listener.close()


class Stack:
    """The service as separate processes (each in its own process group), and a user of it;
    on a SQLite file of its own unless given another database."""

    def __init__(self, var_dir: Path, db_url: str | None = None) -> None:
        self.var_dir = var_dir
        self.db_url = db_url or f"sqlite:///{var_dir / 'trainq.db'}"
        migrate(self.db_url)
        self.redis = RedisServer(var_dir)
        self.redis.start()
        self.env = service_env(self.db_url, self.redis.url, var_dir, **FAST)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        _, token = make_user(self.db_url, "alice")
        self.headers = {"Authorization": f"Bearer {token}"}

    def spawn(self, name: str, args: list[str], **env: str) -> subprocess.Popen[bytes]:
        """Start a process with its own log file and process group."""
        log = (self.var_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", *args], cwd=ROOT, env={**self.env, **env}, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=dies_with_us(),
        )  # fmt: skip
        self.procs[name] = proc
        return proc

    def start_web(self, redis_url: str | None = None) -> None:
        """gunicorn, as `trainq up` runs it (optionally talking to the broker through a proxy)."""
        env = {"TRAINQ_WEB_WORKERS": "1", "TRAINQ_WEB_THREADS": "4"}
        if redis_url:
            env["TRAINQ_REDIS_URL"] = redis_url
        self.spawn("web", ["gunicorn", "web.wsgi:app", "--bind", f"127.0.0.1:{self.port}",
                           "--worker-class", "gthread", "--workers", "1", "--threads", "4",
                           "--no-control-socket"], **env)  # fmt: skip

        def healthy() -> bool:
            try:
                return requests.get(self.url + "/healthz", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        wait_until(healthy, 60, "the API to answer")

    def start_worker(self, name: str = "worker", concurrency: int = 1) -> subprocess.Popen[bytes]:
        """A training worker (prefork; a child trains TRAINQ_WORKER_JOBS_PER_CHILD jobs)."""
        return self.spawn(name, ["celery", "-A", "worker", "worker", "--queues", "celery",
                                 "--concurrency", str(concurrency), "--loglevel", "INFO",
                                 "--hostname", f"{name}-{self.port}@%h"])  # fmt: skip

    def start_periodic(self) -> None:
        """The light worker that runs the reconciler under beat."""
        self.spawn("periodic", ["celery", "-A", "worker", "worker", "--queues",
                                "trainq.periodic", "--pool", "solo", "--beat", "--loglevel",
                                "INFO", "--hostname", f"periodic-{self.port}@%h", "--schedule",
                                str(self.var_dir / "celerybeat-schedule")],
                   TRAINQ_WARM_TF="0")  # fmt: skip

    def submit(self, spec: dict[str, Any]) -> str:
        r = requests.post(f"{self.url}/api/v1/jobs", json=spec, headers=self.headers, timeout=30)
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    def job(self, job_id: str) -> Job:
        """The job as the database has it, with its epochs."""
        with session_scope(self.db_url) as s:
            job = s.get(Job, job_id)
            assert job is not None
            _ = job.epochs, job.artifacts
            return job

    def wait(self, check: Any, what: str, timeout: float = 240) -> Any:
        try:
            return wait_until(check, timeout, what, every=0.05)
        except AssertionError:
            for name in self.procs:
                print(f"----- {name}.log -----")
                print((self.var_dir / f"{name}.log").read_text(errors="replace")[-6000:])
            raise

    def wait_finished(self, job_id: str, timeout: float = 240) -> Job:
        def finished() -> Job | None:
            job = self.job(job_id)
            return job if job.status not in (JobStatus.queued, JobStatus.running) else None

        return self.wait(finished, f"job {job_id} to finish", timeout)  # type: ignore[no-any-return]

    def unfinished(self) -> list[str]:
        """Jobs still queued or running: none may be left when a chaos test ends."""
        with session_scope(self.db_url) as s:
            open_ = (JobStatus.queued, JobStatus.running)
            return list(s.scalars(select(Job.id).where(Job.status.in_(open_))))

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.redis.proc is not None and self.redis.proc.poll() is None:
            self.redis.proc.terminate()
            self.redis.proc.wait(10)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """A fresh stack; the test starts the parts it needs."""
    stack = Stack(tmp_path)
    try:
        yield stack
    finally:
        stack.stop()
