"""`trainq worker`: a training worker on a machine of its own, joining a running service.

It needs what the service's hosts share: the database, Redis and the store (their URLs as
options or TRAINQ_* variables). It announces its slots and GPUs as it starts, so the
dispatcher hands it work with no setting changed elsewhere; it is started again if it dies,
as `trainq up` does for its own worker, and stopping it (Ctrl-C) hands its jobs back.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from urllib.parse import urlparse

from shared.commands import database
from shared.commands.up import _dies_with_us, _redis_answers, _supervise, worker_command

OPTIONS = {  # option -> the variable it sets for the worker
    "database_url": "TRAINQ_DATABASE_URL",
    "redis_url": "TRAINQ_REDIS_URL",
    "storage_url": "TRAINQ_STORAGE_URL",
}


def _reachable(url: str) -> bool:
    from sqlalchemy import create_engine, text

    engine = create_engine(url, connect_args={"connect_timeout": 5} if "postgresql" in url else {})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


def run(args: argparse.Namespace) -> int:
    """Check that the service's database and Redis answer, then run a worker until Ctrl-C."""
    for option, variable in OPTIONS.items():
        if getattr(args, option, None):
            os.environ[variable] = getattr(args, option)
    settings = database.service_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    if not _redis_answers(settings.redis_url):
        raise SystemExit(f"no Redis answers at {settings.redis_url}: give the service's own "
                         "(--redis-url or TRAINQ_REDIS_URL)")  # fmt: skip
    if not _reachable(settings.database_url):
        where = urlparse(settings.database_url).hostname or settings.database_url
        raise SystemExit(f"the database at {where} does not answer: give the service's own "
                         "(--database-url or TRAINQ_DATABASE_URL)")  # fmt: skip
    if settings.database_url.startswith("sqlite"):
        print("trainq: note: the database is a SQLite file; only workers on this host share it")
    if not settings.storage_url:
        print("trainq: note: no store is set (--storage-url); this worker keeps models and "
              "checkpoints in its own folders, which other hosts cannot read")  # fmt: skip
    env = {
        **os.environ,
        "TRAINQ_DATABASE_URL": settings.database_url,
        "TRAINQ_REDIS_URL": settings.redis_url,
        "TRAINQ_STORAGE_URL": settings.storage_url,
        "PYTHONUNBUFFERED": "1",
    }
    command = worker_command(settings, args.name)

    def spawn(_name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command, env=env, cwd=database.ROOT, start_new_session=True,
            preexec_fn=_dies_with_us(None),
        )  # fmt: skip

    print(f"trainq: starting worker {args.name} ({settings.worker_concurrency} slots, GPUs: "
          f"{settings.gpus or 'detected'}); Ctrl-C stops it", flush=True)  # fmt: skip
    return _supervise({"worker": spawn("worker")}, spawn)
