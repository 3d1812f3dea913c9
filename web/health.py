"""Health check: is the API up, and can it reach its database and broker."""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint
from sqlalchemy import text

from web import responses
from web.extensions import db, settings
from web.schemas import Health

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[dict[str, Any], int]:
    """200 when the database answers; the broker's state is reported alongside."""
    checks: dict[str, str] = {}
    try:
        db().execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # reported, not raised: this endpoint must answer
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        redis.Redis.from_url(settings().redis_url, socket_connect_timeout=1).ping()
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"error: {type(exc).__name__}"
    ok = checks["database"] == "ok"
    return responses.body(Health(status="ok" if ok else "error", checks=checks)), 200 if ok else 503
