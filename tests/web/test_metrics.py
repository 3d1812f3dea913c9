"""/metrics: the figures match what the test did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from shared.db import sessions
from shared.jobs import lifecycle
from shared.settings import Settings
from tests.specs import quickstart


def scrape(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.content_type.startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.get_data(as_text=True)):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _trained_model(folder: Path) -> dict[str, tuple[str, int, str]]:
    import keras

    from worker.training import _save

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(10)])  # fmt: skip
    return _save(model, folder)


@pytest.mark.timeout(120)
def test_metrics_count_what_happened(
    client: FlaskClient, settings: Settings, alice: dict[str, Any], bob: dict[str, Any]
) -> None:
    before = scrape(client)
    ids = [client.post("/api/v1/jobs", json=quickstart(epochs=3), headers=who["headers"]).json["id"]  # type: ignore[index]
           for who in (alice, alice, alice, bob)]  # fmt: skip
    url = settings.database_url
    done = ids[0]
    assert lifecycle.start(sessions(url), done, "test")
    for epoch, seconds in [(1, 0.2), (2, 0.7), (3, 3.0)]:
        lifecycle.record_epoch(sessions(url), done, epoch, {"loss": 1.0 / epoch}, seconds)
    files = _trained_model(settings.artifacts / done)
    lifecycle.succeed(sessions(url), done, None, files)
    assert lifecycle.start(sessions(url), ids[1], "test")  # running
    digit = [[0] * 28] * 28
    for _ in range(3):
        r = client.post(f"/api/v1/jobs/{done}/predict", json={"instances": [digit]},
                        headers=alice["headers"])  # fmt: skip
        assert r.status_code == 200, r.json
    for _ in range(2):
        assert client.get("/api/v1/jobs/nope", headers=alice["headers"]).status_code == 404

    after = scrape(client)
    jobs = {s: after[("trainq_jobs", (("state", s),))] for s in
            ("queued", "running", "succeeded", "failed", "cancelled")}  # fmt: skip
    assert jobs == {"queued": 2, "running": 1, "succeeded": 1, "failed": 0, "cancelled": 0}
    assert after[("trainq_queue_depth", (("user_id", str(alice["id"])),))] == 1
    assert after[("trainq_queue_depth", (("user_id", str(bob["id"])),))] == 1
    assert "alice" not in client.get("/metrics").get_data(as_text=True)  # no names, no token

    assert after[("trainq_epoch_duration_seconds_count", ())] == 3
    assert after[("trainq_epoch_duration_seconds_sum", ())] == pytest.approx(3.9)
    assert after[("trainq_epoch_duration_seconds_bucket", (("le", "0.25"),))] == 1
    assert after[("trainq_epoch_duration_seconds_bucket", (("le", "1.0"),))] == 2

    def delta(name: str, labels: tuple[tuple[str, str], ...] = ()) -> float:
        return after.get((name, labels), 0.0) - before.get((name, labels), 0.0)

    assert delta("trainq_predict_latency_seconds_count") == 3
    assert delta("trainq_predict_latency_seconds_sum") > 0
    route = (("method", "GET"), ("route", "/api/v1/jobs/<job_id>"), ("status", "404"))
    assert delta("trainq_http_requests_total", route) == 2
    posted = (("method", "POST"), ("route", "/api/v1/jobs"), ("status", "202"))
    assert delta("trainq_http_requests_total", posted) == 4
