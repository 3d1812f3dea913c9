"""Conformance: jobs that use each quickstart parameter, run by the worker's own code in-process.

A job is submitted through the in-process API (so it is checked as at submit), then trained by
``worker.training.run_job`` in this process on SQLite; the real worker process path is covered
by tests/integration. Data is small and synthetic so that each job takes a second or two.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from shared.settings import Settings
from tests.integration.conftest import live  # noqa: F401  (the real stack, for test_live)

N, FEATURES, CLASSES = 240, 8, 3


def toy(n: int = N, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Separable 3-class data: the class is the largest of three feature sums."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, FEATURES)).astype("float32")
    y = np.argmax(x[:, :3] + 0.5 * x[:, 3:6], axis=1).astype("int64")
    return x, y


def npz(**arrays: np.ndarray) -> bytes:
    """An .npz file's bytes."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def mlp_spec(dataset_id: str, **fit: Any) -> dict[str, Any]:
    """A small classifier on an uploaded dataset; fit parameters as given."""
    return {
        "dataset": {"id": dataset_id},
        "model": {"layers": [
            {"class_name": "Dense", "config": {"units": 16, "activation": "relu"}},
            {"class_name": "Dense", "config": {"units": CLASSES}},
        ]},
        "compile": {
            "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.01}},
            "loss": {"class_name": "SparseCategoricalCrossentropy",
                     "config": {"from_logits": True}},
            "metrics": ["accuracy"],
        },
        "fit": {"epochs": 2, "batch_size": 16, **fit},
        "seed": 7,
    }  # fmt: skip


@dataclass
class Runner:
    """Upload datasets, run jobs to the end, read what a user reads."""

    client: FlaskClient
    headers: dict[str, str]
    settings: Settings

    def upload(self, content: bytes, name: str = "toy") -> dict[str, Any]:
        r = self.client.post(
            "/api/v1/datasets",
            data={"file": (io.BytesIO(content), f"{name}.npz"), "name": name},
            headers=self.headers,
            content_type="multipart/form-data",
        )
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.get_json()  # type: ignore[no-any-return]

    def submit(self, spec: dict[str, Any]) -> Any:
        return self.client.post("/api/v1/jobs", json=spec, headers=self.headers)

    def run(self, spec: dict[str, Any], expect: str = "succeeded") -> dict[str, Any]:
        from worker.training import run_job

        r = self.submit(spec)
        assert r.status_code == 202, r.get_data(as_text=True)
        run_job(self.settings, r.get_json()["id"])
        job = self.client.get(f"/api/v1/jobs/{r.get_json()['id']}", headers=self.headers)
        body = job.get_json()
        assert body["status"] == expect, body["error"]
        return body  # type: ignore[no-any-return]

    def model(self, job: dict[str, Any]) -> Any:
        import keras

        r = self.client.get(f"/api/v1/jobs/{job['id']}/model", headers=self.headers)
        path = self.settings.var_dir / f"{job['id']}.keras"
        path.write_bytes(r.data)
        return keras.models.load_model(path)


@pytest.fixture
def runner(client: FlaskClient, alice: dict[str, Any], settings: Settings) -> Runner:
    """Runs jobs for alice."""
    return Runner(client, alice["headers"], settings)


@pytest.fixture
def toy_id(runner: Runner) -> str:
    """The toy dataset, uploaded, with a test split and a sample-weight array."""
    x, y = toy()
    xt, yt = toy(60, seed=1)
    weights = np.where(y == 0, 3.0, 1.0).astype("float32")
    return str(
        runner.upload(npz(x_train=x, y_train=y, x_test=xt, y_test=yt, sample_weight=weights))["id"]
    )


def history(job: dict[str, Any], key: str = "loss") -> list[float]:
    """One metric per recorded epoch."""
    return [h["metrics"][key] for h in job["history"]]


def plain_keras(
    spec_fit: dict[str, Any], build: Callable[[], Any] | None = None, **compile: Any
) -> list[float]:
    """The same training as a plain Keras script: per-epoch losses."""
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(7)
    x, y = toy()
    model = build() if build else keras.Sequential([
        keras.Input((FEATURES,)), keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(CLASSES),
    ])  # fmt: skip
    model.compile(
        optimizer=compile.pop("optimizer", keras.optimizers.Adam(learning_rate=0.01)),
        loss=compile.pop("loss", keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
        metrics=["accuracy"], **compile,
    )  # fmt: skip
    fit = {"epochs": 2, "batch_size": 16, "verbose": 0, **spec_fit}
    result = model.fit(x, y, **fit)
    keras.backend.clear_session()
    return list(result.history["loss"])
