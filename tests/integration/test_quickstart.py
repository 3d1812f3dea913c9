"""The quickstart as a remote job, end to end, through a real HTTP server and Celery worker."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from sqlalchemy import func, select

from shared.datasets.builtin import load
from shared.db import session_scope
from shared.models import EpochRecord
from tests.integration.conftest import Live
from tests.specs import quickstart

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]


@pytest.fixture(scope="module")
def finished(live: Live) -> dict[str, Any]:
    """The quickstart job, submitted and watched from queued to succeeded."""
    job = live.submit(quickstart())
    assert job["status"] == "queued"
    assert job["progress"]["epochs"] == 5
    statuses, texts = [job["status"]], []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job = live.get(job["id"])
        if job["status"] != statuses[-1]:
            statuses.append(job["status"])
        if job["status"] == "running":
            texts.append(job["progress"]["text"])
        if job["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.05)
    return {"job": job, "statuses": statuses, "texts": texts}


def test_goes_queued_running_succeeded(finished: dict[str, Any]) -> None:
    assert finished["statuses"] == ["queued", "running", "succeeded"], finished["job"].get("error")
    assert any(t.startswith("epoch ") and t.endswith(" of 5") for t in finished["texts"])
    done = finished["job"]["progress"]
    assert (done["epochs_done"], done["percent"], done["text"]) == (5, 100.0, "epoch 5 of 5")


def test_records_exactly_five_epochs(live: Live, finished: dict[str, Any]) -> None:
    job = finished["job"]
    history = job["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    for row in history:
        assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(row["metrics"])
        assert row["duration_s"] > 0
    with session_scope(live.db_url) as s:
        count = s.scalar(select(func.count()).where(EpochRecord.job_id == job["id"]))
    assert count == 5
    assert job["test_metrics"]["accuracy"] >= 0.9


def _predict(live: Live, job_id: str, instances: np.ndarray) -> list[dict[str, Any]]:
    r = requests.post(
        f"{live.url}/api/v1/jobs/{job_id}/predict",
        json={"instances": instances.tolist()},
        headers=live.alice,
    )
    assert r.status_code == 200, r.text
    return r.json()["predictions"]  # type: ignore[no-any-return]


def test_predict_classifies_the_mnist_test_set(live: Live, finished: dict[str, Any]) -> None:
    data = load("mnist-sample")
    assert data.x_test is not None and data.y_test is not None
    predictions: list[dict[str, Any]] = []
    for start in range(0, len(data.x_test), 2500):
        predictions += _predict(live, finished["job"]["id"], data.x_test[start : start + 2500])
    assert len(predictions) == 10_000
    logits = np.array([p["logits"] for p in predictions])
    probabilities = np.array([p["probabilities"] for p in predictions])
    classes = np.array([p["class"] for p in predictions])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (classes == logits.argmax(axis=1)).all()
    accuracy = float((classes == data.y_test).mean())
    assert accuracy >= 0.90, accuracy


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_downloaded_model_gives_the_endpoints_logits(
    live: Live, finished: dict[str, Any], fmt: str, tmp_path: Path
) -> None:
    import keras

    job_id = finished["job"]["id"]
    r = requests.get(
        f"{live.url}/api/v1/jobs/{job_id}/model", params={"format": fmt}, headers=live.alice
    )
    assert r.status_code == 200
    path = tmp_path / f"model.{fmt}"
    path.write_bytes(r.content)
    model = keras.models.load_model(path)
    x = load("mnist-sample").x_test[:200]  # type: ignore[index]
    local = np.asarray(model(x.astype("float32") / 255.0, training=False))
    served = np.array([p["logits"] for p in _predict(live, job_id, x)])
    np.testing.assert_allclose(local, served, atol=1e-5)


def test_spec_that_cannot_build_is_refused_at_submit(live: Live) -> None:
    spec = quickstart(epochs=1)
    spec["model"]["layers"][1]["config"]["units"] = -3
    r = requests.post(f"{live.url}/api/v1/jobs", json=spec, headers=live.alice)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["details"]["field"] == "model.layers[1].config.units"
    assert "expected a positive integer" in error["message"]


def test_keras_error_fails_the_job_with_its_message(live: Live) -> None:
    # A label outside the model's classes in the validation data shows only while training.
    spec = quickstart(epochs=1, validation_split=0.0)
    spec["fit"]["validation_data"] = {"x": [[[0] * 28] * 28], "y": [99]}
    job = live.wait(live.submit(spec)["id"])
    assert job["status"] == "failed"
    assert job["error"].startswith("InvalidArgumentError: ")
    assert job["history"] == []


def test_another_users_job_is_not_found(live: Live, finished: dict[str, Any]) -> None:
    job_id = finished["job"]["id"]
    for method, path in [
        ("GET", f"/api/v1/jobs/{job_id}"),
        ("POST", f"/api/v1/jobs/{job_id}/predict"),
        ("GET", f"/api/v1/jobs/{job_id}/model"),
    ]:
        r = requests.request(
            method, live.url + path, headers=live.bob, json={"instances": [[0] * 784]}
        )
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"]["code"] == "not_found"
    listed = requests.get(f"{live.url}/api/v1/jobs", headers=live.bob).json()
    assert listed["total"] == 0
