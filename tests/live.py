"""A real service on SQLite (gunicorn + Celery worker) for the modules that need one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from shared.commands.database import migrate
from tests.conftest import make_user
from tests.support import Service, wait_until


@dataclass
class Live:
    """A running service and two users of it."""

    service: Service
    db_url: str
    alice: dict[str, str]
    bob: dict[str, str]

    @property
    def url(self) -> str:
        return self.service.url

    def submit(self, spec: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
        r = requests.post(f"{self.url}/api/v1/jobs", json=spec, headers=headers or self.alice)
        assert r.status_code == 202, r.text
        return r.json()  # type: ignore[no-any-return]

    def get(self, job_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        r = requests.get(f"{self.url}/api/v1/jobs/{job_id}", headers=headers or self.alice)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def wait(self, job_id: str, timeout: float = 180) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            job = self.get(job_id)
            return job if job["status"] in ("succeeded", "failed", "cancelled") else None

        try:
            return wait_until(finished, timeout, f"job {job_id} to finish", every=0.25)  # type: ignore[no-any-return]
        except AssertionError:
            print(self.service.log("worker")[-5000:])
            raise


@contextmanager
def running(db_url: str, broker: str, var_dir: Path, **env: str) -> Iterator[Live]:
    """gunicorn and a Celery worker on a migrated database, with users alice and bob."""
    service = Service(db_url, broker, var_dir, **env)
    try:
        service.start_web()
        service.start_worker()
        _, a = make_user(db_url, "alice")
        _, b = make_user(db_url, "bob")
        yield Live(service, db_url, {"Authorization": f"Bearer {a}"},
                   {"Authorization": f"Bearer {b}"})  # fmt: skip
    finally:
        service.stop()


@contextmanager
def sqlite_service(var_dir: Path, redis_url: str, db_number: int, **env: str) -> Iterator[Live]:
    """The service on a fresh SQLite file, on its own database number of the test Redis."""
    db_url = f"sqlite:///{var_dir / 'trainq.db'}"
    migrate(db_url)
    with running(db_url, redis_url.rsplit("/", 1)[0] + f"/{db_number}", var_dir, **env) as live:
        yield live


@contextmanager
def api_alone(
    var_dir: Path, redis_url: str, db_number: int, user: str, **web: Any
) -> Iterator[tuple[Service, str]]:
    """gunicorn alone on a fresh SQLite file (no worker: submitted jobs stay queued), and a
    token of one user."""
    db_url = f"sqlite:///{var_dir / 'trainq.db'}"
    migrate(db_url)
    service = Service(db_url, redis_url.rsplit("/", 1)[0] + f"/{db_number}", var_dir)
    try:
        service.start_web(**web)
        _, token = make_user(db_url, user)
        yield service, token
    finally:
        service.stop()
