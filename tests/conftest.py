"""Shared fixtures: a private Redis, throwaway databases, the API in-process and for real."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shared.auth import create_user, issue_token
from shared.commands.database import migrate
from shared.db import session_scope
from shared.settings import Settings
from tests.support import postgres_database, redis_server
from web import create_app


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of the test session's own."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session", autouse=True)
def _no_shared_redis(redis_url: str) -> Iterator[None]:
    """Code that falls back to the settings' Redis (events, stamps) uses the private one too,
    never the machine's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRAINQ_REDIS_URL", redis_url)
        yield


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated, empty SQLite database."""
    url = f"sqlite:///{tmp_path / 'trainq.db'}"
    migrate(url)
    return url


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str, redis_url: str) -> Settings:
    """Settings for an in-process app on SQLite and the private Redis."""
    return Settings(
        var_dir=tmp_path, database_url=sqlite_url, redis_url=redis_url,
        artifacts=tmp_path / "artifacts",
    )  # fmt: skip


@pytest.fixture
def app(settings: Settings) -> Flask:
    """The API in this process."""
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for the in-process API."""
    return app.test_client()


def make_user(url: str, name: str) -> tuple[int, str]:
    """Create a user and a token for them."""
    with session_scope(url) as s:
        user = create_user(s, name)
        return user.id, issue_token(s, user)


@pytest.fixture
def alice(sqlite_url: str) -> dict[str, Any]:
    """A user with a token, and the header that carries it."""
    uid, token = make_user(sqlite_url, "alice")
    return {"id": uid, "token": token, "headers": {"Authorization": f"Bearer {token}"}}


@pytest.fixture
def bob(sqlite_url: str) -> dict[str, Any]:
    """A second user."""
    uid, token = make_user(sqlite_url, "bob")
    return {"id": uid, "token": token, "headers": {"Authorization": f"Bearer {token}"}}


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throwaway PostgreSQL database for the session."""
    with postgres_database() as url:
        yield url
