"""A private trainq (own Redis, SQLite, worker, API) for benchmarks, and figures to print."""

from __future__ import annotations

import contextlib
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from shared.auth import create_user, issue_token
from shared.commands.database import migrate
from shared.db import session_scope
from shared.settings import Settings
from tests.support import Service, redis_server, wait_until

FASHION_SRC = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)


def keras_home_with_fashion_mnist(root: Path) -> Path:
    """A KERAS_HOME whose cache holds Fashion-MNIST, from Debian's dataset-fashion-mnist."""
    missing = [f for f in FASHION_FILES if not (FASHION_SRC / f).is_file()]
    if missing:
        raise SystemExit(
            "Fashion-MNIST is needed offline: apt-get install dataset-fashion-mnist "
            f"(missing {', '.join(missing)} in {FASHION_SRC})"
        )
    target = root / "datasets" / "fashion-mnist"
    target.mkdir(parents=True, exist_ok=True)
    for f in FASHION_FILES:
        shutil.copy(FASHION_SRC / f, target / f)
    return root


class Bench:
    """A running service with users, and helpers to drive it over HTTP."""

    def __init__(self, service: Service, tokens: list[str]) -> None:
        self.service = service
        self.url = service.url
        self.headers = [{"Authorization": f"Bearer {t}"} for t in tokens]
        self.http = requests.Session()

    def submit(self, spec: dict[str, Any], user: int = 0) -> str:
        r = self.http.post(f"{self.url}/api/v1/jobs", json=spec, headers=self.headers[user])
        r.raise_for_status()
        return str(r.json()["id"])

    def get(self, job_id: str, user: int = 0) -> dict[str, Any]:
        r = self.http.get(f"{self.url}/api/v1/jobs/{job_id}", headers=self.headers[user])
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]

    def wait(self, job_id: str, user: int = 0, timeout: float = 1800) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            job = self.get(job_id, user)
            return job if job["status"] in ("succeeded", "failed", "cancelled") else None

        job: dict[str, Any] = wait_until(done, timeout, f"job {job_id}", every=0.2)
        if job["status"] != "succeeded":
            raise SystemExit(f"job {job_id} {job['status']}: {job.get('error')}")
        return job


@contextlib.contextmanager
def service(users: int = 1, keras_home: bool = False, **env: str) -> Iterator[Bench]:
    """Start Redis, the API and one worker in a temporary folder; stop them afterwards."""
    with tempfile.TemporaryDirectory(prefix="trainq-bench-") as tmp:
        root = Path(tmp)
        with redis_server(root) as redis_url:
            db_url = f"sqlite:///{root / 'trainq.db'}"
            migrate(db_url)
            tokens = []
            with session_scope(db_url) as s:
                for i in range(users):
                    tokens.append(issue_token(s, create_user(s, f"bench{i}")))
            # As `trainq up` runs it: one training slot, one spare warm process.
            svc = Service(db_url, redis_url, root, TRAINQ_WORKER_SLOTS="1")
            if keras_home:
                svc.env["KERAS_HOME"] = str(keras_home_with_fashion_mnist(root / "keras"))
            svc.env.update(env)
            try:
                defaults = Settings()  # gunicorn as `trainq up` starts it
                svc.start_web(
                    defaults.web_workers, defaults.web_threads, defaults.web_nice,
                    defaults.web_sched_idle,
                )  # fmt: skip
                svc.start_worker(concurrency=2)
                bench = Bench(svc, tokens)
                _warm(bench)
                yield bench
            finally:
                svc.stop()


def _warm(bench: Bench) -> None:
    # Wait until the worker child has loaded TensorFlow, as a running service would have.
    wait_until(lambda: "ready (TensorFlow loaded" in bench.service.log("worker"), 120, "worker")
    time.sleep(0.5)


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of the values."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    """The median."""
    return statistics.median(values)


def row(name: str, value: float, unit: str = "") -> None:
    """One figure, aligned."""
    print(f"  {name:<48} {value:>10.4g} {unit}")
