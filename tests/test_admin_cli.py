"""`trainq users` and `trainq tokens`, run as an administrator would, against a real database."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.settings import Settings
from tests.support import ROOT, service_env
from web import create_app


class Admin:
    """Runs `trainq ...` in a fresh process pointed at one SQLite database."""

    def __init__(self, db_url: str, redis_url: str, var_dir: Path) -> None:
        self.env = service_env(db_url, redis_url, var_dir)

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "trainq.cli", *args],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert (done.returncode == 0) == ok, (args, done.returncode, done.stdout, done.stderr)
        return done


@pytest.fixture
def setup(tmp_path: Path, redis_url: str) -> tuple[Admin, FlaskClient]:
    url = f"sqlite:///{tmp_path / 'admin.db'}"  # created by the first command
    settings = Settings(var_dir=tmp_path, database_url=url, redis_url=redis_url)
    return Admin(url, redis_url, tmp_path), create_app(settings).test_client()


def _me(client: FlaskClient, token: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.get_json()


def _rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()[1:]]


def test_users_and_tokens_from_creation_to_revocation(setup: tuple[Admin, FlaskClient]) -> None:
    trainq, client = setup
    root = trainq("users", "create", "root", "--admin").stdout.strip()
    first = trainq("users", "create", "ann").stdout.strip()
    made = trainq("tokens", "create", "ann", "--expires-in", "2")
    second = made.stdout.strip()
    assert "expires" in made.stderr

    status, me = _me(client, root)
    assert (status, me["name"], me["role"]) == (200, "root", "admin")
    status, me = _me(client, first)
    assert (status, me["name"], me["role"], me["token"]["expires_at"]) == (200, "ann", "user", None)
    status, me = _me(client, second)
    assert status == 200 and me["name"] == "ann"
    expires = datetime.fromisoformat(me["token"]["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=2))) < timedelta(minutes=5)

    users = {row[1]: row for row in _rows(trainq("users", "list").stdout)}
    assert users["root"][2:5] == ["admin", "active", "1"]
    assert users["ann"][2:5] == ["user", "active", "2"]
    tokens = trainq("tokens", "list", "ann").stdout
    assert first not in tokens and second not in tokens  # never shown again
    assert [(row[1], row[2]) for row in _rows(tokens)] == [
        (first[:10], "active"),
        (second[:10], "active"),
    ]

    # Revoked by the prefix the list shows: that token stops at once, the other goes on.
    assert "revoked" in trainq("tokens", "revoke", first[:10]).stdout
    assert _me(client, first)[0] == 401
    assert _me(client, second)[0] == 200
    assert [row[2] for row in _rows(trainq("tokens", "list", "ann").stdout)] == [
        "revoked",
        "active",
    ]

    # A disabled user's every token stops working; enabled again, the live ones work again.
    trainq("users", "disable", "ann")
    assert _me(client, second)[0] == 401
    assert _rows(trainq("users", "list").stdout)[1][3] == "disabled"
    trainq("users", "enable", "ann")
    assert _me(client, second)[0] == 200
    assert _me(client, first)[0] == 401


def test_mistakes_are_one_line_and_exit_status_1(setup: tuple[Admin, FlaskClient]) -> None:
    trainq, _ = setup
    trainq("users", "create", "ann")
    cases = [
        (("users", "create", "ann"), "already exists"),
        (("users", "disable", "nobody"), "no user named 'nobody'"),
        (("tokens", "create", "nobody"), "no user named 'nobody'"),
        (("tokens", "create", "ann", "--expires-in", "0"), "above 0"),
        (("tokens", "revoke", "tq_unknown"), "no token 'tq_unknown'"),
        (("tokens", "revoke", "999"), "no token '999'"),
    ]
    for args, message in cases:
        done = trainq(*args, ok=False)
        assert done.returncode == 1
        assert done.stderr.startswith("error: ") and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    # None of them changed anything: ann still has her one token, nobody else exists.
    users = _rows(trainq("users", "list").stdout)
    assert [(row[1], row[4]) for row in users] == [("ann", "1")]


def test_token_changes_made_by_the_command_take_effect_at_the_next_poll(
    client: FlaskClient, settings: Settings, alice: dict[str, Any], tmp_path: Path
) -> None:
    """What the API keeps of a token (its status answers) is outdated by a revoke or disable
    from the administrator's own process, at the next request: the command's commits renew
    the same stamps the API's own do."""
    from tests.web.test_status_cache import poll, running_job

    trainq = Admin(settings.database_url, settings.redis_url, tmp_path)
    second = trainq("tokens", "create", "alice").stdout.strip()
    job_id = running_job(client, settings, alice["headers"])
    first = alice["headers"]
    other = {"Authorization": f"Bearer {second}"}
    for headers in (first, other):
        for _ in range(2):
            assert poll(client, job_id, headers)[0].status_code == 200
        assert poll(client, job_id, headers)[1] == []  # answered from what the API keeps

    trainq("tokens", "revoke", alice["token"][:10])
    assert poll(client, job_id, first)[0].status_code == 401
    assert poll(client, job_id, other)[0].status_code == 200
    trainq("users", "disable", "alice")
    assert poll(client, job_id, other)[0].status_code == 401
