"""/healthz and /metrics say when the periodic jobs (reconciler, dispatch) last ran."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from flask.testing import FlaskClient

from shared import stamps
from shared.settings import Settings


@pytest.fixture
def broker(settings: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.redis_url)
    client.delete(stamps.PERIODIC_KEY)
    yield client
    client.delete(stamps.PERIODIC_KEY)  # other tests share this Redis


def test_healthz_is_not_ok_once_the_periodic_jobs_are_late(
    client: FlaskClient, settings: Settings, broker: redis.Redis
) -> None:
    fresh = client.get("/healthz")  # no round seen yet (a fresh Redis): nothing said against them
    assert fresh.status_code == 200 and fresh.json["periodic"] == "no round seen yet"

    stamps.periodic_ran(broker)
    ran = client.get("/healthz")
    assert ran.status_code == 200 and ran.json["periodic"].startswith("ok: last round")

    period = settings.reconcile_seconds
    broker.set(stamps.PERIODIC_KEY, repr(time.time() - 5 * period - 30))
    late = client.get("/healthz")
    assert late.status_code == 503 and late.json["status"] == "error"
    assert late.json["periodic"].startswith("late: last round")
    assert late.json["checks"]["database"] == "ok"


def test_metrics_show_when_the_periodic_jobs_last_ran(
    client: FlaskClient, broker: redis.Redis
) -> None:
    assert "trainq_periodic_last_run_timestamp_seconds" not in client.get("/metrics").text
    before = time.time()
    stamps.periodic_ran(broker)
    lines = [
        line
        for line in client.get("/metrics").text.splitlines()
        if line.startswith("trainq_periodic_last_run_timestamp_seconds ")
    ]
    assert len(lines) == 1 and before - 1 <= float(lines[0].split()[1]) <= time.time() + 1
