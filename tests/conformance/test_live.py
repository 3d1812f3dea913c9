"""Through the real API and a real Celery worker: multi-output loss_weights, and equality with a
plain Keras script for the same spec, data and seed."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import requests

from tests.conformance.conftest import history, mlp_spec, npz, toy
from tests.conformance.test_models import two_output_data, two_output_spec
from tests.integration.conftest import Live
from tests.specs import quickstart
from tests.support import ROOT

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]

PLAIN_SCRIPT = """
import json, sys
import keras, numpy as np

keras.utils.set_random_seed(42)
with np.load(sys.argv[1]) as data:
    x, y = data["x_train"].astype("float32") / 255.0, data["y_train"]
model = keras.Sequential([
    keras.Input((28, 28)),
    keras.layers.Flatten(),
    keras.layers.Dense(128, activation="relu"),
    keras.layers.Dropout(0.2),
    keras.layers.Dense(10),
])
model.compile(optimizer="adam",
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
history = model.fit(x, y, epochs=2, batch_size=32, validation_split=0.1, verbose=0)
print(json.dumps(history.history))
"""


def _upload(live: Live, content: bytes) -> str:
    r = requests.post(
        f"{live.url}/api/v1/datasets", files={"file": ("data.npz", content)}, headers=live.alice
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_two_output_document_with_loss_weights(live: Live) -> None:
    dataset_id = _upload(live, npz(**two_output_data()))
    job = live.wait(live.submit(two_output_spec(dataset_id, [0.7, 0.3]))["id"])
    assert job["status"] == "succeeded", job["error"]
    assert [h["epoch"] for h in job["history"]] == [1, 2]
    for row in job["history"]:
        m = row["metrics"]
        assert m["loss"] == pytest.approx(0.7 * m["cls_loss"] + 0.3 * m["reg_loss"], rel=1e-5)
        assert {"cls_accuracy", "reg_mae"} <= set(m)
    # the same spec with the weights the other way round trains to a different total
    swapped = live.wait(live.submit(two_output_spec(dataset_id, [0.3, 0.7]))["id"])
    assert swapped["history"][0]["metrics"]["loss"] != pytest.approx(
        job["history"][0]["metrics"]["loss"], rel=1e-3
    )


SAMPLE = ROOT / "shared" / "datasets" / "data" / "mnist_sample.npz"


def test_epochs_equal_a_plain_keras_script(live: Live) -> None:
    job = live.wait(live.submit(quickstart(epochs=2))["id"])
    assert job["status"] == "succeeded", job["error"]
    done = subprocess.run(
        [sys.executable, "-c", PLAIN_SCRIPT, str(SAMPLE)],
        capture_output=True, text=True, timeout=600, cwd="/",
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    plain: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        ours = [h["metrics"][key] for h in job["history"]]
        assert ours == pytest.approx(plain[key], abs=1e-6), key


def test_data_worker_processes_in_a_celery_worker(live: Live) -> None:
    # Keras's data worker processes, started from a Celery worker process: the job trains, that
    # process exits as usual, and the next job (here the same with threads) trains the same.
    dataset_id = _upload(live, npz(x_train=toy()[0], y_train=toy()[1]))
    fit = {"workers": 2, "max_queue_size": 3}
    processes = live.wait(live.submit(mlp_spec(dataset_id, use_multiprocessing=True, **fit))["id"])
    assert processes["status"] == "succeeded", processes["error"]
    threads = live.wait(live.submit(mlp_spec(dataset_id, use_multiprocessing=False, **fit))["id"])
    assert threads["status"] == "succeeded", threads["error"]
    assert history(processes) == pytest.approx(history(threads), abs=1e-6)
