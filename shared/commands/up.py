"""`trainq up`: the whole service on one machine, in the foreground, until Ctrl-C."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from shared.commands import database

PR_SET_PDEATHSIG = 1  # prctl(2)


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _start_redis(url: str, var_dir: Path) -> subprocess.Popen[bytes]:
    parsed = urlparse(url)
    if parsed.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise SystemExit(f"no Redis answers at {url}; start it, or set TRAINQ_REDIS_URL")
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit(
            f"no Redis answers at {url}, and redis-server is not installed to start one.\n"
            "Install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install "
            "redis), or point TRAINQ_REDIS_URL at a running Redis."
        )
    port = parsed.port or 6379
    print(f"trainq: no Redis at {url}; starting redis-server on port {port}", flush=True)
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(var_dir.resolve()),
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    for _ in range(50):
        if _redis_answers(url):
            return proc
        time.sleep(0.1)
    proc.terminate()
    raise SystemExit(f"redis-server did not answer on port {port}")


def lower_priority(nice: int, idle: bool) -> Callable[[], None] | None:
    """What a child runs before it starts: lower its CPU priority by `nice`, and with `idle` put
    it under SCHED_IDLE (where the kernel has it), so that it runs on the cores training leaves
    free and leaves a core the moment a training thread wakes up to use it.

    Where the kernel groups each session's processes for the scheduler (autogroup), niceness
    counts only within the group: a child that leads a session of its own (as `trainq up` starts
    them) lowers its group too. One that shares its parent's session leaves the group alone.
    """
    if not nice and not idle:
        return None

    def lower() -> None:
        if nice:
            os.nice(nice)
            if os.getsid(0) == os.getpid():
                with contextlib.suppress(OSError):  # no autogroup in this kernel
                    Path("/proc/self/autogroup").write_text(str(nice))
        if idle and hasattr(os, "SCHED_IDLE"):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))

    return lower


def _dies_with_us(then: Callable[[], None] | None) -> Callable[[], None]:
    """What a child runs before it starts: where Linux can, it is sent SIGTERM if `trainq up`
    itself dies (killed outright, it cannot stop them), so that nothing it started runs on
    without it; then what `then` does."""

    def preexec() -> None:
        if sys.platform == "linux":
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if then is not None:
            then()

    return preexec


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


def worker_command(settings: Any, name: str = "train") -> list[str]:
    """The training worker's command line: it consumes the shared queue (and its own, which
    it adds itself: worker.presence) and announces its slots."""
    return [sys.executable, "-m", "celery", "-A", "worker", "worker", *(
        # One spare process: it has loaded TensorFlow while the others train, so the next
        # job starts at once while a worker process is being replaced.
        f"--queues celery --concurrency {settings.worker_concurrency + settings.worker_spare} "
        "--loglevel INFO"
    ).split(), "--hostname", f"{name}@%h"]  # fmt: skip


def run() -> int:
    """Start Redis if needed, migrate, create the first user, run web, worker and beat."""
    settings = database.service_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    settings.artifacts.mkdir(parents=True, exist_ok=True)
    if not _port_free(settings.host, settings.port):
        raise SystemExit(f"port {settings.port} is taken; set TRAINQ_PORT to another one")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    if not _redis_answers(settings.redis_url):
        procs["redis"] = _start_redis(settings.redis_url, settings.var_dir)
    database.migrate()
    token, token_file = database.ensure_first_user()

    py = sys.executable
    env = {
        **os.environ,
        "TRAINQ_DATABASE_URL": settings.database_url,
        "TRAINQ_ARTIFACTS": str(settings.artifacts),
        "PYTHONUNBUFFERED": "1",
    }
    state = settings.var_dir.resolve()
    # The API workers add up their request counts for /metrics in files here, fresh each start.
    prometheus = state / "prometheus"
    shutil.rmtree(prometheus, ignore_errors=True)
    prometheus.mkdir()
    commands = {
        # web/gunicorn_conf.py: the worker class, timeout and request limits, and gunicorn's own
        # error answers in the API's error shape (as the image and the tests run it).
        "web": [py, "-m", "gunicorn", "-c", str(database.ROOT / "web" / "gunicorn_conf.py"),
                "web.wsgi:app", *(
            f"--bind {settings.host}:{settings.port} "
            f"--workers {settings.web_workers} --threads {settings.web_threads}"
        ).split(), "--control-socket", str(state / "gunicorn.ctl")],
        "worker": worker_command(settings),
        "periodic": [py, "-m", "celery", "-A", "worker", "worker", *(
            "--queues trainq.periodic,trainq.webhooks --pool solo --beat --loglevel INFO"
        ).split(), "--hostname", "periodic@%h", "--schedule", str(state / "celerybeat-schedule")],
    }  # fmt: skip
    envs = {
        "web": {**env, "PROMETHEUS_MULTIPROC_DIR": str(prometheus)},
        "worker": env,
        "periodic": {**env, "TRAINQ_WARM_TF": "0"},
    }

    def spawn(name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            commands[name], env=envs[name], cwd=database.ROOT, start_new_session=True,
            # The API yields the cores to training: a status poll waits a moment when both are
            # busy, a training epoch does not wait for the polls.
            preexec_fn=_dies_with_us(lower_priority(settings.web_nice, settings.web_sched_idle)
                                     if name == "web" else None),
        )  # fmt: skip

    for name in commands:
        procs[name] = spawn(name)

    url = f"http://{settings.host}:{settings.port}"
    print(f"\ntrainq is starting at {url}  (web, worker and periodic jobs; Ctrl-C stops all)")
    if token:
        print(f"A first user 'admin' was created; its token is saved in {token_file}.")
        print(
            f"The trainq CLI reads it from there; for curl: export TRAINQ_TOKEN=$(cat {token_file})"
        )
    print("Try: trainq submit examples/quickstart.json --follow\n", flush=True)
    return _supervise(procs, spawn)


# A process that dies is started again at once; one that died this many times within the
# window below is not: something is wrong that a restart does not mend, and trainq stops.
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0


def _supervise(
    procs: dict[str, subprocess.Popen[bytes]],
    spawn: Callable[[str], subprocess.Popen[bytes]],
) -> int:
    """Run until Ctrl-C or SIGTERM, starting again a web, worker or periodic process that dies
    (the Redis it started, if it dies, stops everything: the service cannot run without it)."""
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    code = 0
    restarts: dict[str, list[float]] = {}
    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is None or stopping:
                continue
            now = time.monotonic()
            recent = [t for t in restarts.get(name, []) if now - t < RESTART_WINDOW_SECONDS]
            if name == "redis" or len(recent) >= MAX_RESTARTS:
                why = "" if name == "redis" else f" ({len(recent)} restarts in the last minute)"
                print(f"trainq: {name} exited with code {proc.returncode}{why}; stopping",
                      flush=True)  # fmt: skip
                stopping, code = True, 1
                break
            print(f"trainq: {name} exited with code {proc.returncode}; starting it again",
                  flush=True)  # fmt: skip
            # What it started itself (the periodic worker's embedded beat) goes with it: each
            # service leads a process group of its own.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            restarts[name] = [*recent, now]
            procs[name] = spawn(name)
        time.sleep(0.5)
    print("trainq: stopping ...", flush=True)
    # The service first (the worker hands back or finishes its job), Redis last.
    _stop_all([p for n, p in procs.items() if n != "redis"])
    _stop_all([procs["redis"]] if "redis" in procs else [])
    print("trainq: stopped", flush=True)
    return code


def _stop_all(procs: list[subprocess.Popen[bytes]], grace: float = 30) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
