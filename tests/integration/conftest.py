"""The real stack: gunicorn API, a Celery worker process, Redis, SQLite or PostgreSQL."""

from __future__ import annotations

import pytest

from tests.live import Live, LiveStacks

__all__ = ["Live", "live"]  # Live is imported from here by the test modules


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, live_stacks: LiveStacks) -> Live:
    """The service on SQLite or on a throwaway PostgreSQL database (shared with the session's
    other modules that use the plain service: tests/live.py)."""
    return live_stacks.get(request.param)
