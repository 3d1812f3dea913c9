"""remote_fit: the quickstart's own Keras code, trained on the service instead of locally."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from shared.datasets.builtin import load
from shared.ml.build import preprocess
from tests.integration.conftest import Live
from tests.live import LiveStacks
from trainq import Client
from trainq.keras import job_spec, remote_fit

pytestmark = pytest.mark.timeout(600)


def quickstart_model():  # type: ignore[no-untyped-def]
    """The TensorFlow quickstart's model, word for word (with Keras 3's names)."""
    import keras

    model = keras.models.Sequential([
        keras.layers.Flatten(input_shape=(28, 28)),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(10),
    ])  # fmt: skip
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer="adam", loss=loss_fn, metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def live(live_stacks: LiveStacks) -> Live:
    """The shared service on SQLite (tests/live.py)."""
    return live_stacks.get("sqlite")


def test_spec_of_the_quickstart_model_is_the_quickstart_spec() -> None:
    spec = job_spec(quickstart_model(), dataset="mnist-sample", scale=255.0, epochs=5, seed=42)
    layers = spec["model"]["layers"]
    assert [x["class_name"] for x in layers] == ["Flatten", "Dense", "Dropout", "Dense"]
    assert layers[0]["config"]["input_shape"] == [28, 28]
    assert layers[1]["config"]["units"] == 128 and layers[1]["config"]["activation"] == "relu"
    assert layers[1]["config"]["kernel_initializer"]["class_name"] == "GlorotUniform"
    assert spec["compile"]["optimizer"]["class_name"] == "Adam"
    assert spec["compile"]["loss"]["config"]["from_logits"] is True
    assert spec["compile"]["metrics"] == ["accuracy"]


@pytest.mark.slow
def test_remote_fit_predicts_like_a_local_fit_with_the_same_seed(live: Live) -> None:
    import keras

    token = live.alice["Authorization"].split(" ", 1)[1]
    model = quickstart_model()
    job = remote_fit(
        model, dataset="mnist-sample", scale=255.0, epochs=2, validation_split=0.1, seed=42,
        client=Client(live.url, token), verbose=0,
    )  # fmt: skip
    assert job["status"] == "succeeded", job.get("error")
    assert [h["epoch"] for h in job["history"]] == [1, 2]

    # The same code trained here, with the same seed and data, as a user would run it.
    data = load("mnist-sample")
    assert data.x_test is not None
    keras.utils.set_random_seed(42)
    local = quickstart_model()
    local.fit(preprocess(data.x_train, 255.0), data.y_train, epochs=2, batch_size=32,
              validation_split=0.1, verbose=0)  # fmt: skip
    x = data.x_test[:300]
    r = requests.post(f"{live.url}/api/v1/jobs/{job['id']}/predict", headers=live.alice,
                      json={"instances": x.tolist()}, timeout=60)  # fmt: skip
    served = np.array([p["logits"] for p in r.json()["predictions"]])
    mine = np.asarray(local(preprocess(x, 255.0), training=False))
    np.testing.assert_allclose(served, mine, atol=1e-3)
    assert (served.argmax(axis=1) == mine.argmax(axis=1)).all()
    # load_weights: the user's own model object now holds the trained weights.
    np.testing.assert_allclose(np.asarray(model(preprocess(x, 255.0))), served, atol=1e-5)
