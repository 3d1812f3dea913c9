"""The real stack: gunicorn API, a Celery worker process, Redis, SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext

import pytest

from shared.commands.database import migrate
from tests.live import Live, running
from tests.support import postgres_database

__all__ = ["Live", "live"]  # Live is imported from here by the test modules


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Live]:
    """The service on SQLite or on a throwaway PostgreSQL database."""
    var_dir = tmp_path_factory.mktemp(f"live-{request.param}")
    sqlite = nullcontext(f"sqlite:///{var_dir / 'trainq.db'}")
    with postgres_database() if request.param == "postgresql" else sqlite as db_url:
        migrate(db_url)
        # A database number of our own on the session's Redis, so queues don't mix.
        broker = redis_url.rsplit("/", 1)[0] + ("/1" if request.param == "sqlite" else "/2")
        with running(db_url, broker, var_dir) as live_service:
            yield live_service
