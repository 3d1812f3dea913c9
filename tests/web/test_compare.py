"""Compare: jobs side by side show the one spec path where they differ, each metric's final and
best value and curve; bad or foreign ids are refused as everywhere."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from shared.db import sessions
from shared.jobs import lifecycle
from shared.settings import Settings
from tests.specs import quickstart

URL = "/api/v1/compare"
LR = "compile.optimizer.config.learning_rate"


def _job(client: FlaskClient, alice: dict[str, Any], settings: Settings, lr: float,
         losses: list[float]) -> str:  # fmt: skip
    spec = quickstart(epochs=len(losses))
    spec["compile"]["optimizer"] = {"class_name": "Adam", "config": {"learning_rate": lr}}
    job = client.post("/api/v1/jobs", json=spec, headers=alice["headers"]).json
    db = sessions(settings.database_url)
    assert lifecycle.start(db, job["id"], "test-worker")
    for epoch, loss in enumerate(losses, 1):
        lifecycle.record_epoch(db, job["id"], epoch, {"loss": loss, "val_accuracy": 1 - loss}, 0.1)
    return str(job["id"])


def test_three_jobs_differing_in_the_learning_rate_show_one_row_of_differences(
    client: FlaskClient, alice: dict[str, Any], settings: Settings
) -> None:
    curves = {0.1: [0.9, 0.5, 0.7], 0.01: [0.8, 0.4, 0.3], 0.001: [1.0, 0.9, 0.8]}
    ids = [_job(client, alice, settings, lr, losses) for lr, losses in curves.items()]
    r = client.get(f"{URL}?jobs={','.join(ids)}", headers=alice["headers"])
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.json
    differing = [row for row in body["spec"] if row["differs"]]
    assert differing == [{"path": LR, "values": [0.1, 0.01, 0.001], "differs": True}]
    assert {"path": "fit.epochs", "values": [3, 3, 3], "differs": False} in body["spec"]
    assert [j["id"] for j in body["jobs"]] == ids
    first = body["jobs"][0]["metrics"]
    assert first["loss"] == {"final": 0.7, "best": 0.5, "curve": [0.9, 0.5, 0.7]}
    assert first["val_accuracy"]["best"] == 0.5  # the highest: not a loss
    assert [j["metrics"]["loss"]["curve"] for j in body["jobs"]] == list(curves.values())


def test_what_cannot_be_compared_is_refused_in_the_one_error_shape(
    client: FlaskClient, alice: dict[str, Any], bob: dict[str, Any], settings: Settings
) -> None:
    mine = _job(client, alice, settings, 0.1, [0.5])
    theirs = _job(client, bob, settings, 0.1, [0.5])
    too_many = ",".join([mine] + [f"{i:032d}" for i in range(20)])  # 21: checked before looked up
    for query, status in [(f"jobs={too_many}", 422), ("jobs=,", 422), ("", 422),
                          (f"jobs={mine},{theirs}", 404), (f"jobs={mine},nope", 404)]:  # fmt: skip
        r = client.get(f"{URL}?{query}", headers=alice["headers"])
        assert r.status_code == status, (query, r.get_data(as_text=True))
        assert set(r.json["error"]) >= {"code", "message"}
    assert client.get(f"{URL}?jobs={mine},{theirs}").status_code == 401
