"""Per-app resources: settings, a database session per request, the caches, the job queue."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from shared.db import sessions
from shared.ml.serving import ModelCache
from shared.settings import Settings
from web.queue import JobQueue
from web.status_cache import StampedCache, StatusCache


def init_app(app: Flask, settings: Settings) -> None:
    """Bind the settings and shared resources to the app."""
    app.extensions["trainq"] = {
        "settings": settings,
        "sessions": sessions(settings.database_url),
        "models": ModelCache(settings.model_cache_mb * 1024 * 1024),
        "queue": JobQueue(settings),
        "status": StatusCache(max_bytes=settings.status_cache_mb * 1024 * 1024),
        "model_refs": StampedCache(),
        # Open event streams of this process: each holds a thread for as long as it is open.
        "streams": threading.BoundedSemaphore(settings.web_streams),
    }
    app.teardown_appcontext(_close_session)


def _state() -> dict[str, Any]:
    return current_app.extensions["trainq"]


def settings() -> Settings:
    """The app's settings."""
    return _state()["settings"]


def db() -> Session:
    """The request's database session, opened on first use."""
    if "db" not in g:
        g.db = _state()["sessions"]()
    return g.db


def models() -> ModelCache:
    """Loaded models of this process."""
    return _state()["models"]


def status_cache() -> StatusCache:
    """Status responses of running and finished jobs kept by this process."""
    return _state()["status"]


def model_refs() -> StampedCache:
    """Which model file a token may call for a job, kept by this process (see predict)."""
    return _state()["model_refs"]


def queue() -> JobQueue:
    """The producer that hands jobs to the workers."""
    return _state()["queue"]


def _close_session(exc: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is not None:
        if exc is not None:
            session.rollback()
        session.close()
