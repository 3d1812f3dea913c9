"""Prometheus metrics at /metrics.

Job gauges (jobs by state, queue depth per user) and the epoch-duration histogram are computed
from the database at scrape time, so they are right whichever process trained or answered.
HTTP requests and predict latency are counted in the API processes; under gunicorn with
several workers, set PROMETHEUS_MULTIPROC_DIR (``trainq up`` does: ``var/prometheus``) and
every worker's counts are added up.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import redis
from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select

from shared import stamps
from shared.models import EpochRecord, Job, JobStatus

bp = Blueprint("metrics", __name__)

HTTP_REQUESTS = Counter(
    "trainq_http_requests", "HTTP requests answered, by route and status",
    ["method", "route", "status"],
)  # fmt: skip
PREDICT_LATENCY = Histogram(
    "trainq_predict_latency_seconds", "Time to answer a successful predict request",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)  # fmt: skip
# Every route that answers with the one predict: the job's, by a model's name, and the protocols'.
PREDICT_ENDPOINTS = frozenset({
    "jobs.predict", "models.predict_latest", "models.predict_version", "models.predict_alias",
    "tfserving.tf_predict", "tfserving.tf_predict_version", "tfserving.tf_predict_label",
    "v2.infer",
})  # fmt: skip
EPOCH_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class DatabaseCollector(Collector):
    """Job and epoch metrics read from the database, the truth about jobs."""

    def __init__(self, sessions: Any) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        session = self.sessions()
        try:
            by_state = dict(
                session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
            )
            queued = session.execute(
                select(Job.owner_id, func.count())
                .where(Job.status == JobStatus.queued)
                .group_by(Job.owner_id)
            ).all()
            columns: list[Any] = [
                func.count(),
                func.coalesce(func.sum(EpochRecord.duration_s), 0.0),
            ]
            columns += [func.sum(case((EpochRecord.duration_s <= b, 1), else_=0)) for b in
                        EPOCH_BUCKETS]  # fmt: skip
            epochs = session.execute(select(*columns)).one()
        finally:
            session.close()
        jobs = GaugeMetricFamily("trainq_jobs", "Jobs by state", labels=["state"])
        for state in JobStatus:
            jobs.add_metric([state.value], by_state.get(state, 0))
        yield jobs
        # By user id, not name: /metrics is read without a token (`trainq users list` maps ids).
        depth = GaugeMetricFamily("trainq_queue_depth", "Queued jobs per user", labels=["user_id"])
        for owner_id, count in queued:
            depth.add_metric([str(owner_id)], count)
        yield depth
        count, total, *cumulative = epochs
        buckets = [(str(float(b)), int(c or 0)) for b, c in zip(EPOCH_BUCKETS, cumulative,
                                                                  strict=True)]  # fmt: skip
        buckets.append(("+Inf", int(count)))
        yield HistogramMetricFamily(
            "trainq_epoch_duration_seconds", "Duration of recorded training epochs",
            buckets=buckets, sum_value=float(total),
        )  # fmt: skip


class PeriodicCollector(Collector):
    """When the periodic jobs last ended a round, read from Redis at scrape time."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url

    def collect(self) -> Iterator[Metric]:
        try:
            client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=1)
            last = stamps.periodic_last_run(client)
        except redis.RedisError:
            return
        if last is not None:
            yield GaugeMetricFamily(
                "trainq_periodic_last_run_timestamp_seconds",
                "Unix time when the periodic jobs (reconciler, dispatch) last ended a round",
                value=last,
            )


@bp.get("/metrics")
def metrics() -> Response:
    """The Prometheus exposition."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        for collector in (HTTP_REQUESTS, PREDICT_LATENCY):
            registry.register(collector)
    state = current_app.extensions["trainq"]
    registry.register(DatabaseCollector(state["sessions"]))
    registry.register(PeriodicCollector(state["settings"].redis_url))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def _started() -> None:
    g.metrics_started = time.perf_counter()


def _count(response: Response) -> Response:
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
    if (
        request.endpoint in PREDICT_ENDPOINTS
        and response.status_code == 200
        and "metrics_started" in g
    ):
        PREDICT_LATENCY.observe(time.perf_counter() - g.metrics_started)
    return response


def init_app(app: Flask) -> None:
    """Count every request and serve /metrics."""
    app.before_request(_started)
    app.after_request(_count)
    app.register_blueprint(bp)
