"""A registered model by name, version or alias, loaded for the protocols' routes: the caller's
own models only (another user's is not found), called through the jobs' one predict."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from flask import request

from shared import stamps
from shared.auth import hash_token
from shared.errors import InvalidInput, NotFound
from shared.ml import serving
from shared.models import utcnow
from shared.registry import queries as registry
from web import bodies, jobs
from web.auth import bearer, current_token, current_user
from web.extensions import db

BINARY_HEADER = "Inference-Header-Content-Length"
MAX_VERSION = 2**31 - 1


@dataclass(frozen=True)
class Resolved:
    """A registered model's version, with its job's model loaded in this process."""

    name: str
    version: int
    served: serving.Served
    ref: Any  # what jobs.predict_with needs of the job's model


class _Names:
    """Which job and version a token's name (with its version or alias) resolved to, kept for
    ``seconds`` while the users-and-tokens stamp is unchanged and the token unexpired: a
    repeated call skips the token and registry queries (as the job predict does), a revoked
    token is refused at its next request, and a moved alias is seen within ``seconds``."""

    def __init__(self, seconds: float = 0.25, size: int = 4096) -> None:
        self.seconds, self.size = seconds, size
        self._kept: dict[tuple[str, ...], tuple[str, float, datetime | None, str, int]] = {}

    def get(self, key: tuple[str, ...], auth: str | None) -> tuple[str, int] | None:
        kept = self._kept.get(key)
        if auth is None or kept is None or kept[0] != auth:
            return None
        _, at, expires, job_id, number = kept
        if time.monotonic() - at > self.seconds or (expires is not None and expires <= utcnow()):
            return None
        return job_id, number

    def keep(self, key: tuple[str, ...], auth: str | None, job_id: str, number: int) -> None:
        if auth is None:
            return
        if len(self._kept) >= self.size:
            self._kept.clear()
        expires = current_token().expires_at
        self._kept[key] = (auth, time.monotonic(), expires, job_id, number)


_NAMES = _Names()


def _auth_stamp() -> str | None:
    try:
        value = stamps.redis_client().get(stamps.AUTH_KEY)
    except redis.RedisError:
        return None
    return value.decode() if isinstance(value, bytes) else value


def resolve(name: str, version: int | None = None, alias: str | None = None) -> Resolved:
    """The caller's model ``name`` at ``version``, at ``alias``, or at its newest version."""
    if version is not None and not 1 <= version <= MAX_VERSION:  # never a database integer
        raise NotFound(f"model {name!r} has no version {version}", details={"version": version})
    key = (hash_token(bearer()), name, str(version), str(alias))
    auth = _auth_stamp()  # read before the database is
    kept = _NAMES.get(key, auth)
    if kept is None:
        found = registry.resolve(db(), current_user().id, name, version=version, alias=alias)
        kept = (found.job_id, int(found.version))
        _NAMES.keep(key, auth, *kept)
    ref, served = jobs.served_model(kept[0])
    return Resolved(name, kept[1], served, ref)


def versions(name: str) -> list[int]:
    """The numbers of the caller's model's versions, oldest first."""
    return [v.version for v in registry.detail(db(), current_user().id, name).versions]


def body() -> tuple[Any, bytes]:
    """The request's JSON (whatever its Content-Type) and, with the Open Inference Protocol's
    binary extension, the bytes after it."""
    raw = request.get_data(cache=True)
    header = request.headers.get(BINARY_HEADER)
    if header is None:
        return bodies.json_bytes(raw), b""
    if not header.isdigit() or int(header) > len(raw):
        raise InvalidInput(f"{BINARY_HEADER} is not a length within the body")
    return bodies.json_bytes(raw[: int(header)]), raw[int(header) :]


def predict(model: Resolved, inputs: dict[str, Any]) -> list[serving.Head]:
    """The one predict, for a request already read against the model's signature."""
    return jobs.predict_with(model.ref, model.served, inputs)
