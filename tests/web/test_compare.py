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


def test_inline_arrays_compare_by_shape_and_digest_and_the_rows_are_bounded(
    client: FlaskClient, alice: dict[str, Any], settings: Settings, monkeypatch: Any
) -> None:
    """A job's inline arrays (up to 100,000 numbers each) are one row each, as its details
    show them, with a digest that tells them apart; past MAX_SPEC_ROWS only the differing
    paths are listed and `omitted` counts the rest."""
    from shared.db import session_scope
    from shared.jobs import compare
    from shared.models import Job

    ids = []
    with session_scope(settings.database_url) as s:
        for weight in (1.0, 2.0):
            spec = quickstart(epochs=1, validation_split=0.0, sample_weight=[weight] * 5000)
            job = Job(owner_id=alice["id"], name=f"w{weight}", spec=spec, epochs_total=1)
            s.add(job)
            s.flush()
            ids.append(job.id)
    r = client.get(f"{URL}?jobs={','.join(ids)}", headers=alice["headers"])
    assert r.status_code == 200, r.get_data(as_text=True)
    rows = {row["path"]: row for row in r.json["spec"]}
    assert len(rows) < 100 and r.json["omitted"] == 0
    assert rows["fit.sample_weight.shape[0]"] == {
        "path": "fit.sample_weight.shape[0]",
        "values": [5000, 5000],
        "differs": False,
    }
    assert rows["fit.sample_weight.sha256"]["differs"]
    assert [row["path"] for row in r.json["spec"] if row["differs"]] == ["fit.sample_weight.sha256"]
    monkeypatch.setattr(compare, "MAX_SPEC_ROWS", 3)
    capped = client.get(f"{URL}?jobs={','.join(ids)}", headers=alice["headers"]).json
    assert [row["path"] for row in capped["spec"]] == ["fit.sample_weight.sha256"]
    assert capped["omitted"] == len(rows) - 1


def test_final_is_the_last_recorded_value_of_a_metric_that_skips_epochs(
    client: FlaskClient, alice: dict[str, Any], settings: Settings
) -> None:
    job = _job(client, alice, settings, 0.1, [0.9, 0.5, 0.7])
    db = sessions(settings.database_url)
    lifecycle.record_epoch(db, job, 4, {"loss": 0.6}, 0.1)  # no val_accuracy this epoch
    metrics = client.get(f"{URL}?jobs={job}", headers=alice["headers"]).json["jobs"][0]["metrics"]
    assert metrics["val_accuracy"]["curve"] == [1 - 0.9, 1 - 0.5, 1 - 0.7, None]
    assert metrics["val_accuracy"]["final"] == 1 - 0.7
    assert metrics["loss"]["final"] == 0.6
