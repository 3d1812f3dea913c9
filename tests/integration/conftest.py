"""The real stack: gunicorn API, a Celery worker process, Redis, SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.conftest import make_user
from tests.support import Service, postgres_database, wait_until
from trainq.server import migrate


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


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Live]:
    """The service on SQLite or on a throwaway PostgreSQL database."""
    var_dir = tmp_path_factory.mktemp(f"live-{request.param}")
    with postgres_database() if request.param == "postgresql" else _sqlite(var_dir) as db_url:
        migrate(db_url)
        # A database number of our own on the session's Redis, so queues don't mix.
        broker = redis_url.rsplit("/", 1)[0] + ("/1" if request.param == "sqlite" else "/2")
        service = Service(db_url, broker, var_dir)
        try:
            service.start_web()
            service.start_worker()
            _, a = make_user(db_url, "alice")
            _, b = make_user(db_url, "bob")
            yield Live(service, db_url, _headers(a), _headers(b))
        finally:
            service.stop()


class _sqlite:
    def __init__(self, var_dir: Any) -> None:
        self.url = f"sqlite:///{var_dir / 'trainq.db'}"

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *_: object) -> None:
        return None
