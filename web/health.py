"""Health check: is the API up, and can it reach its database and broker."""

from __future__ import annotations

import time
from typing import Any

import redis
from flask import Blueprint
from sqlalchemy import text

from shared import stamps
from web import responses
from web.extensions import db, settings
from web.schemas import Health

bp = Blueprint("health", __name__)
# The periodic jobs (reconciler, dispatch) are late when their last round ended this many
# periods ago, and at least LATE_AFTER_SECONDS: their process has stopped, or cannot work.
LATE_AFTER_PERIODS = 4
LATE_AFTER_SECONDS = 30.0


def periodic_state(client: redis.Redis, period: float) -> tuple[str, bool]:
    """What /healthz says of the periodic jobs, and whether they are late. Before their first
    round (a fresh Redis), nothing is said against them."""
    last = stamps.periodic_last_run(client)
    if last is None:
        return "no round seen yet", False
    ago = max(0.0, time.time() - last)
    late = ago > max(LATE_AFTER_PERIODS * period, LATE_AFTER_SECONDS)
    state = f"last round {ago:.0f} s ago (every {period:g} s)"
    return (f"late: {state}" if late else f"ok: {state}"), late


@bp.get("/healthz")
def healthz() -> tuple[dict[str, Any], int]:
    """200 when the database answers and the periodic jobs are not late; the broker's state is
    reported alongside."""
    checks: dict[str, str] = {}
    try:
        db().execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # reported, not raised: this endpoint must answer
        checks["database"] = f"error: {type(exc).__name__}"
    late, periodic = False, None
    try:
        client = redis.Redis.from_url(settings().redis_url, socket_connect_timeout=1)
        client.ping()
        checks["broker"] = "ok"
        periodic, late = periodic_state(client, settings().reconcile_seconds)
    except Exception as exc:
        checks["broker"] = f"error: {type(exc).__name__}"
    ok = checks["database"] == "ok" and not late
    return responses.body(
        Health(status="ok" if ok else "error", checks=checks, periodic=periodic)
    ), 200 if ok else 503
