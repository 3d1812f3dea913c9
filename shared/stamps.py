"""Version stamps in Redis: whether what a process keeps of a database read is still current.

Each change that a job's status shows is committed with one of the job's events, and after that
commit ``shared.jobs.events`` gives the job's stamp a new random value. Each commit that changes or
deletes a user or an API token gives the users-and-tokens stamp a new one. A reader takes the
stamps *before* it reads the database and keeps what it read under them: while both stamps are
unchanged, so is what it read. Redis keeps no stamp across a restart; nothing is kept under a
missing stamp, and nothing is kept longer than ``MAX_AGE`` seconds in any case (a stamp that
could not be written when its change was committed is then outlived).
"""

from __future__ import annotations

import uuid
from typing import Any

AUTH_KEY = "trainq:stamp:auth"
JOB_STAMP_SECONDS = 7 * 24 * 3600  # a finished job's stamp goes; its status is then read anew
MAX_AGE = 5.0


def job_key(job_id: str) -> str:
    """The Redis key of a job's stamp."""
    return f"trainq:stamp:job:{job_id}"


def restamp_job(pipe: Any, job_id: str) -> None:
    """Queue a new stamp for the job on a Redis pipeline."""
    pipe.set(job_key(job_id), uuid.uuid4().hex, ex=JOB_STAMP_SECONDS)


def restamp_auth(client: Any) -> None:
    """A new stamp for users and tokens."""
    client.set(AUTH_KEY, uuid.uuid4().hex)


def read(client: Any, job_id: str) -> tuple[str, str] | None:
    """The users-and-tokens stamp and the job's, or None when either is missing."""
    auth, job = client.mget(AUTH_KEY, job_key(job_id))
    if auth is None:  # first use, or Redis restarted: stamp now, keep nothing this time
        client.set(AUTH_KEY, uuid.uuid4().hex, nx=True)
        return None
    if job is None:
        return None
    return auth.decode(), job.decode()
