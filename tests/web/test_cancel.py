"""POST /api/v1/jobs/{id}/cancel: queued at once, running asked to stop, finished is a conflict."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import update

from shared.db import session_scope
from shared.models import Job, JobStatus
from shared.settings import Settings
from tests.specs import quickstart
from tests.web.test_api import JOBS, assert_error

User = dict[str, Any]


def _submit(client: FlaskClient, user: User) -> str:
    response = client.post(JOBS, json=quickstart(), headers=user["headers"])
    assert response.status_code == 202
    return str(response.get_json()["id"])


def _set(settings: Settings, job_id: str, status: JobStatus) -> None:
    with session_scope(settings.database_url) as s:
        s.execute(update(Job).where(Job.id == job_id).values(status=status))


def test_a_queued_job_is_cancelled_at_once(
    client: FlaskClient, alice: User, settings: Settings
) -> None:
    job_id = _submit(client, alice)
    response = client.post(f"{JOBS}/{job_id}/cancel", headers=alice["headers"])
    assert response.status_code == 200
    assert response.get_json()["status"] == "cancelled"
    assert client.get(f"{JOBS}/{job_id}", headers=alice["headers"]).get_json()["status"] == (
        "cancelled"
    )
    # It has no model: predict and download say why.
    error = assert_error(
        client.post(
            f"{JOBS}/{job_id}/predict", json={"instances": [[0]]}, headers=alice["headers"]
        ),
        409,
        "conflict",
    )
    assert "cancelled before its first epoch" in error["message"]


def test_a_running_job_is_asked_to_stop(
    client: FlaskClient, alice: User, settings: Settings
) -> None:
    job_id = _submit(client, alice)
    _set(settings, job_id, JobStatus.running)
    response = client.post(f"{JOBS}/{job_id}/cancel", headers=alice["headers"])
    assert response.status_code == 202
    body = response.get_json()
    assert (body["status"], body["cancel_requested"]) == ("running", True)
    with session_scope(settings.database_url) as s:
        job = s.get(Job, job_id)
        assert job is not None and job.cancel_requested_at is not None
    # Asking twice is harmless while it stops.
    assert client.post(f"{JOBS}/{job_id}/cancel", headers=alice["headers"]).status_code == 202


def test_cancelling_a_finished_job_is_a_conflict(
    client: FlaskClient, alice: User, settings: Settings
) -> None:
    job_id = _submit(client, alice)
    for status in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled):
        _set(settings, job_id, status)
        error = assert_error(
            client.post(f"{JOBS}/{job_id}/cancel", headers=alice["headers"]), 409, "conflict"
        )
        assert error["details"] == {"status": str(status)}
        assert f"is {status}" in error["message"]


def test_another_users_job_cannot_be_cancelled(client: FlaskClient, alice: User, bob: User) -> None:
    job_id = _submit(client, alice)
    assert_error(client.post(f"{JOBS}/{job_id}/cancel", headers=bob["headers"]), 404, "not_found")
    assert_error(client.post(f"{JOBS}/nope/cancel", headers=alice["headers"]), 404, "not_found")
    assert_error(client.post(f"{JOBS}/{job_id}/cancel"), 401, "unauthorized")
    assert client.get(f"{JOBS}/{job_id}", headers=alice["headers"]).get_json()["status"] == (
        "queued"
    )


def test_an_administrator_may_cancel_anyones_job(
    client: FlaskClient, alice: User, bob: User, settings: Settings
) -> None:
    from shared.auth import create_user, issue_token
    from shared.models import Role

    with session_scope(settings.database_url) as s:
        admin = {"Authorization": f"Bearer {issue_token(s, create_user(s, 'root', Role.admin))}"}
    job_id = _submit(client, alice)
    # Another plain user may not; for them the job does not exist.
    assert_error(client.post(f"{JOBS}/{job_id}/cancel", headers=bob["headers"]), 404, "not_found")
    response = client.post(f"{JOBS}/{job_id}/cancel", headers=admin)
    assert response.status_code == 200 and response.get_json()["status"] == "cancelled"
