"""While the database does not answer, the API says 503 unavailable, in the one error shape,
at once; a wrong query is still a 500."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import exc as sa_exc

from shared.db import patiently, unavailable
from shared.settings import Settings
from tests.specs import quickstart
from tests.support import free_port
from tests.web.test_api import assert_error
from web import create_app


@pytest.fixture
def down_app(tmp_path: Path, redis_url: str) -> Flask:
    """The API with its PostgreSQL on a port nobody listens on."""
    url = f"postgresql+psycopg://trainq@127.0.0.1:{free_port()}/trainq"
    settings = Settings(var_dir=tmp_path, database_url=url, redis_url=redis_url)
    return create_app(settings)


AUTH = {"Authorization": "Bearer tq_not-checked-while-the-database-is-down"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/me", None),
        ("GET", "/api/v1/jobs", None),
        ("GET", "/api/v1/jobs/0123456789abcdef", None),
        ("POST", "/api/v1/jobs", quickstart(epochs=1)),
        ("POST", "/api/v1/jobs/0123456789abcdef/cancel", None),
    ],
)
def test_every_request_is_503_unavailable_while_the_database_is_down(
    down_app: Flask, method: str, path: str, body: object
) -> None:
    client = down_app.test_client()
    began = time.monotonic()
    response = client.open(path, method=method, json=body, headers=AUTH)
    assert time.monotonic() - began < 5
    error = assert_error(response, 503, "unavailable")
    assert "the database is unreachable" in error["message"]
    assert error["details"] == {"service": "database", "retry_after": 5}
    assert response.headers["Retry-After"] == "5"


def test_healthz_says_503_while_the_database_is_down(down_app: Flask) -> None:
    response = down_app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json is not None and response.json["checks"]["database"].startswith("error")


def test_a_wrong_query_is_still_an_internal_error(app: Flask, client: FlaskClient) -> None:
    @app.get("/broken")
    def broken() -> str:
        raise sa_exc.IntegrityError("INSERT ...", {}, Exception("UNIQUE constraint failed"))

    @app.get("/no-table")
    def no_table() -> str:
        raise sa_exc.OperationalError("SELECT ...", {}, Exception("no such table: jobs"))

    assert_error(client.get("/broken"), 500, "internal")
    assert_error(client.get("/no-table"), 500, "internal")


def _refused() -> sa_exc.OperationalError:
    return sa_exc.OperationalError("SELECT 1", {}, Exception("connection refused"))


def test_unavailable_tells_an_outage_from_a_mistake() -> None:
    assert unavailable(_refused())
    assert unavailable(sa_exc.InterfaceError("SELECT 1", {}, Exception("connection closed")))
    assert unavailable(sa_exc.TimeoutError("QueuePool limit reached"))
    lost = sa_exc.DBAPIError("SELECT 1", {}, Exception("server closed the connection"))
    lost.connection_invalidated = True
    assert unavailable(lost)
    assert not unavailable(sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not unavailable(sa_exc.ProgrammingError("SELECT", {}, Exception("no such column")))
    assert not unavailable(ValueError("not a database error"))


def test_patiently_waits_out_an_outage_within_its_bound() -> None:
    calls = []

    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 4:
            raise _refused()
        return "done"

    assert patiently(flaky, within=10, what="test") == "done"
    assert len(calls) == 4

    def down() -> None:
        raise _refused()

    began = time.monotonic()
    with pytest.raises(sa_exc.OperationalError):
        patiently(down, within=1.0, what="test")
    assert 0.5 < time.monotonic() - began < 2.0

    def wrong() -> None:
        calls.append(0.0)
        raise sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key"))

    calls.clear()
    with pytest.raises(sa_exc.IntegrityError):
        patiently(wrong, within=10, what="test")
    assert len(calls) == 1  # a mistake is not tried again


class _AwaySession:
    def get(self, *_: object) -> None:
        raise _refused()

    def close(self) -> None:
        pass


def test_an_open_event_stream_waits_for_the_database(
    sqlite_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.db import session_scope, sessions
    from shared.jobs.events import STATUS, add_event
    from shared.models import Job, JobStatus
    from tests.conftest import make_user
    from web import events

    owner, _ = make_user(sqlite_url, "erin")
    with session_scope(sqlite_url) as s:
        job = Job(owner_id=owner, name="j", spec={}, epochs_total=1, status=JobStatus.succeeded)
        s.add(job)
        s.flush()
        add_event(s, job.id, STATUS, {"status": "succeeded", "test_metrics": None})
        job_id = job.id
    monkeypatch.setattr(events, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(events, "KEEPALIVE_SECONDS", 0.0)
    real, calls = sessions(sqlite_url), []

    def flaky() -> object:
        calls.append(1)
        return _AwaySession() if len(calls) <= 3 else real()

    frames = list(events.stream(flaky, redis_url, job_id, 0))
    assert frames[0].startswith("retry:")
    assert frames[1:4] == [": keep-alive\n\n"] * 3  # open while the database is away
    assert frames[4].startswith("id: 1\nevent: status\n") and len(frames) == 5
