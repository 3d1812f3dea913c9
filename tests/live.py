"""A real service (gunicorn + Celery worker) for the modules that need one.

The plain service (default settings) is shared: one on SQLite and one on PostgreSQL per
test session (per xdist worker), started when a module first asks for it (``live_stacks`` in
tests/conftest.py; conftest puts every test that uses them in one xdist group). A module that
needs other settings, or breaks what it runs, starts its own with ``sqlite_service``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.commands.database import migrate
from tests.conftest import make_user
from tests.support import Service, postgres_database, wait_until


@dataclass
class Live:
    """A running service and two users of it."""

    service: Service
    db_url: str
    alice: dict[str, str]
    bob: dict[str, str]
    # alice's succeeded jobs by spec (canonical JSON), trained once per stack: see ``trained``.
    _trained: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.service.url

    def cli(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        """A ``trainq`` command in this process as alice: exit code, stdout, stderr."""
        from trainq import cli

        token = self.alice["Authorization"].split(" ", 1)[1]
        code = cli.main([*argv, "--url", self.url, "--token", token])
        out = capsys.readouterr()
        return code, out.out, out.err

    def submit(self, spec: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
        r = requests.post(f"{self.url}/api/v1/jobs", json=spec, headers=headers or self.alice)
        assert r.status_code == 202, r.text
        return r.json()  # type: ignore[no-any-return]

    def get(self, job_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        r = requests.get(f"{self.url}/api/v1/jobs/{job_id}", headers=headers or self.alice)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def trained(self, *specs: dict[str, Any]) -> list[str]:
        """alice's succeeded job of each spec; a spec some module trained already on this stack
        is not trained again (modules that only need a trained model share it)."""
        keys = [json.dumps(spec, sort_keys=True) for spec in specs]
        waiting = {k: self.submit(spec)["id"] for k, spec in zip(keys, specs, strict=True)
                   if k not in self._trained}  # fmt: skip
        for key, job_id in waiting.items():
            job = self.wait(job_id)
            assert job["status"] == "succeeded", job.get("error")
            self._trained[key] = job_id
        return [self._trained[k] for k in keys]

    def wait(self, job_id: str, timeout: float = 180) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            job = self.get(job_id)
            return job if job["status"] in ("succeeded", "failed", "cancelled", "pruned") else None

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
    var_dir: Path, redis_url: str, db_number: int, user: str,
    env: dict[str, str] | None = None, **web: Any,
) -> Iterator[tuple[Service, str]]:  # fmt: skip
    """gunicorn alone on a fresh SQLite file (no worker: submitted jobs stay queued), and a
    token of one user; ``env``: more TRAINQ_ settings."""
    db_url = f"sqlite:///{var_dir / 'trainq.db'}"
    migrate(db_url)
    broker = redis_url.rsplit("/", 1)[0] + f"/{db_number}"
    service = Service(db_url, broker, var_dir, **(env or {}))
    try:
        service.start_web(**web)
        _, token = make_user(db_url, user)
        yield service, token
    finally:
        service.stop()


# The database numbers of the session's Redis that the shared stacks use as their broker; no
# other test uses them (a module's own service takes another number, so queues don't mix).
SHARED_BROKER_DB = {"sqlite": 1, "postgresql": 2}


@contextmanager
def plain_service(database: str, var_dir: Path, redis_url: str) -> Iterator[Live]:
    """The service with default settings on a fresh SQLite file or PostgreSQL database."""
    sqlite = nullcontext(f"sqlite:///{var_dir / 'trainq.db'}")
    with postgres_database() if database == "postgresql" else sqlite as db_url:
        migrate(db_url)
        broker = redis_url.rsplit("/", 1)[0] + f"/{SHARED_BROKER_DB[database]}"
        # Webhooks may point at the tests' receivers on 127.0.0.1.
        with running(db_url, broker, var_dir, TRAINQ_WEBHOOKS_ALLOW_PRIVATE="true") as live:
            yield live


class LiveStacks:
    """The shared services of a session, by database ("sqlite", "postgresql"), each started on
    first use and stopped when the session ends."""

    def __init__(self, mktemp: Callable[[str], Path], redis_url: str) -> None:
        self._mktemp, self._redis_url = mktemp, redis_url
        self._running: dict[str, Live] = {}
        self._exit = ExitStack()

    def get(self, database: str) -> Live:
        live = self._running.get(database)
        if live is None:
            service = plain_service(database, self._mktemp(f"live-{database}"), self._redis_url)
            live = self._running[database] = self._exit.enter_context(service)
        gone = {n: p.returncode for n, p in live.service.procs.items() if p.poll() is not None}
        assert not gone, f"the shared {database} service lost a process (exit codes {gone}): " + (
            "\n".join(f"----- {n}.log -----\n{live.service.log(n)[-3000:]}" for n in gone)
        )
        return live

    def close(self) -> None:
        self._exit.close()
