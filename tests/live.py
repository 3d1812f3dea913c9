"""A real service on SQLite (gunicorn + Celery worker) for the modules that need one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import make_user
from tests.integration.conftest import Live
from tests.support import Service
from trainq.server import migrate


@contextmanager
def sqlite_service(var_dir: Path, redis_url: str, db_number: int) -> Iterator[Live]:
    """gunicorn and a Celery worker on a fresh SQLite file, with users alice and bob."""
    db_url = f"sqlite:///{var_dir / 'trainq.db'}"
    migrate(db_url)
    broker = redis_url.rsplit("/", 1)[0] + f"/{db_number}"
    service = Service(db_url, broker, var_dir)
    try:
        service.start_web()
        service.start_worker()
        _, a = make_user(db_url, "alice")
        _, b = make_user(db_url, "bob")
        yield Live(service, db_url, {"Authorization": f"Bearer {a}"},
                   {"Authorization": f"Bearer {b}"})  # fmt: skip
    finally:
        service.stop()
