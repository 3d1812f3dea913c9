"""remote_fit: the quickstart's own Keras code with only its `fit` line changed, a two-output
Functional model stopping early where a local fit stops, and what cannot be sent refused before
anything is uploaded; all on the shared live service."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import requests

from tests.conformance.test_models import two_output_model
from tests.integration.conftest import Live
from tests.live import LiveStacks
from tests.support import ROOT
from trainq import Client, InvalidSpec
from trainq.errors import CannotSend
from trainq.keras import remote_fit
from trainq.keras_spec import CALLBACKS, callbacks_spec, compile_spec

pytestmark = pytest.mark.timeout(600)

SAMPLE = ROOT / "shared" / "datasets" / "data" / "mnist_sample.npz"
# CI's budget: 2,000 of the sample's 5,000 training digits (and 100 test digits to predict),
# two epochs instead of the quickstart's five; the code is otherwise the seed document's.
ROWS, EPOCHS = 2000, 2


def small_model() -> Any:
    """A small classifier of 28x28 images, compiled as the quickstart compiles its model."""
    import keras

    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(10)])  # fmt: skip
    model.compile(optimizer="adam", metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))  # fmt: skip
    return model


def mnist() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``keras.datasets.mnist.load_data()``, offline: the repository's MNIST sample."""
    with np.load(SAMPLE, allow_pickle=False) as data:
        return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])


@pytest.fixture(scope="module")
def live(live_stacks: LiveStacks) -> Live:
    """The shared service on SQLite (tests/live.py)."""
    return live_stacks.get("sqlite")


@pytest.fixture(scope="module")
def client(live: Live) -> Client:
    """alice's SDK client."""
    return Client(live.url, live.alice["Authorization"].split(" ", 1)[1])


def datasets(client: Client) -> list[str]:
    """alice's dataset ids."""
    return [d["id"] for d in client.list_datasets()["datasets"]]


def jobs(client: Client) -> int:
    """How many jobs alice has."""
    return int(client.list()["total"])


def test_the_compile_state_and_callbacks_are_the_spec() -> None:
    import keras

    spec = compile_spec(small_model())
    assert spec["optimizer"]["class_name"] == "Adam"
    assert spec["optimizer"]["config"]["learning_rate"] == pytest.approx(1e-3)
    assert spec["loss"] == {
        "class_name": "SparseCategoricalCrossentropy",
        "config": {"reduction": "sum_over_batch_size", "from_logits": True, "ignore_class": None},
    }
    assert spec["metrics"] == ["accuracy"]
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, min_delta=0.01)
    assert callbacks_spec([stop, keras.callbacks.TerminateOnNaN()]) == [
        {"class_name": "EarlyStopping", "config": {"patience": 2, "min_delta": 0.01}},
        {"class_name": "TerminateOnNaN", "config": {}},
    ]


def test_the_sendable_callbacks_are_on_the_services_allow_list() -> None:
    from shared.spec.allowlists import CALLBACKS as ALLOWED

    assert set(CALLBACKS) <= ALLOWED


@pytest.mark.slow
def test_what_cannot_be_sent_is_refused_before_anything_is_uploaded(client: Client) -> None:
    import keras

    before, jobs_before = datasets(client), jobs(client)
    x, y = np.zeros((20, 28, 28), "float32"), np.zeros(20, "uint8")
    lambda_model = keras.Sequential([keras.Input((28, 28)), keras.layers.Lambda(lambda t: t * 2),
                                     keras.layers.Flatten(), keras.layers.Dense(10)])  # fmt: skip
    lambda_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(InvalidSpec, match="Lambda"):  # off the layers' allow-list: the server
        remote_fit(lambda_model, x, y, client=client, verbose=0)
    model = small_model()
    printer = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch))
    with pytest.raises(CannotSend, match="LambdaCallback"):
        remote_fit(model, x, y, callbacks=[printer], client=client, verbose=0)
    with pytest.raises(CannotSend, match="different lengths"):
        remote_fit(model, x, y[:19], client=client, verbose=0)
    with pytest.raises(CannotSend, match="Python objects"):
        remote_fit(model, x, np.array([None] * 20), client=client, verbose=0)
    with pytest.raises(CannotSend, match="different lengths"):  # the validation arrays too
        remote_fit(model, x, y, validation_data=(x, y[:5]), client=client, verbose=0)
    with pytest.raises(CannotSend, match="sample_weight goes with x and y"):  # never dropped
        remote_fit(model, dataset="mnist-sample", sample_weight=np.ones(5000), client=client,
                   verbose=0)  # fmt: skip
    assert datasets(client) == before and jobs(client) == jobs_before


@pytest.mark.slow
def test_arrays_are_scaled_on_the_service_as_a_dataset_is(client: Client) -> None:
    x = np.full((20, 28, 28), 255, "uint8")
    y = np.zeros(20, "uint8")
    history = remote_fit(small_model(), x, y, epochs=1, scale=255.0, client=client, verbose=0)
    job = client.get(history.job["id"])
    assert job["status"] == "succeeded" and job["spec"]["dataset"]["scale"] == 255.0


@pytest.mark.slow
def test_the_quickstart_with_only_its_fit_line_changed(live: Live, client: Client) -> None:
    import keras

    # The seed document's code (tensorflow.org/tutorials/quickstart/beginner), offline.
    (x_train, y_train), (x_test, y_test) = mnist()
    x_train, y_train, x_test = x_train[:ROWS], y_train[:ROWS], x_test[:100]
    x_train, x_test = x_train / 255.0, x_test / 255.0
    model = keras.models.Sequential([
        keras.layers.Flatten(input_shape=(28, 28)),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(10),
    ])  # fmt: skip
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer="adam", loss=loss_fn, metrics=["accuracy"])
    # model.fit(x_train, y_train, epochs=5, validation_split=0.2) becomes:
    history = remote_fit(model, x_train, y_train, epochs=EPOCHS, validation_split=0.2,
                         client=client, verbose=0)  # fmt: skip

    job = client.get(history.job["id"])
    assert job["status"] == "succeeded"
    assert history.epoch == [0, 1]
    recorded = {k: [row["metrics"][k] for row in job["history"]] for k in history.history}
    assert history.history == recorded
    assert set(recorded) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert job["spec"]["fit"]["validation_split"] == 0.2
    r = requests.post(f"{live.url}/api/v1/jobs/{job['id']}/predict", headers=live.alice,
                      json={"instances": x_test.tolist()}, timeout=60)  # fmt: skip
    assert r.status_code == 200, r.text
    served = np.array([p["logits"] for p in r.json()["predictions"]])
    np.testing.assert_allclose(model.predict(x_test, verbose=0), served, atol=1e-5)
    assert (served.argmax(axis=1) == y_test[:100]).mean() > 0.8  # it learned

    # The same arrays again: found by their hash, not uploaded a second time.
    from trainq.keras import _arrays, _dataset

    had = datasets(client)
    again = _dataset(client, _arrays(model, x_train, y_train), "again")
    assert again == job["spec"]["dataset"]["id"] and datasets(client) == had


def two_heads(n: int, seed: int) -> tuple[dict[str, Any], list[Any]]:
    """x by input name and y in the outputs' order, of the two-output model (tests/conformance)."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n, 4)).astype("float32"), rng.normal(size=(n, 3)).astype("float32")
    return {"a": a, "b": b}, [np.argmax(a[:, :3] + b, axis=1), a.sum(axis=1) - b.sum(axis=1)]


@pytest.mark.slow
def test_a_two_output_model_stops_early_where_a_local_fit_stops(client: Client) -> None:
    import keras

    x, y = two_heads(256, seed=3)
    x_val, y_val = two_heads(64, seed=5)
    weights, val_weights = np.linspace(0.5, 1.5, 256), np.linspace(2.0, 0.0, 64)

    def train(fit: Any, seed: int = 3) -> Any:
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed)
        model = two_output_model()
        model.compile(optimizer=keras.optimizers.Adam(0.02),
                      loss={"cls": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                            "reg": "mse"},
                      loss_weights={"cls": 0.7, "reg": 0.3},
                      metrics={"cls": ["accuracy"], "reg": ["mae"]})  # fmt: skip
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, min_delta=0.1)
        return fit(model, x, y, epochs=40, batch_size=32, callbacks=[stop], sample_weight=weights,
                   validation_data=(x_val, y_val, val_weights), verbose=0)  # fmt: skip

    local = train(lambda model, *a, **kw: model.fit(*a, **kw))
    remote = train(lambda model, *a, **kw: remote_fit(model, *a, **kw, seed=3, client=client))
    assert 2 < len(local.epoch) < 40  # it did stop early
    assert remote.epoch == local.epoch
    for key, values in local.history.items():
        assert remote.history[key] == pytest.approx(values, rel=1e-4), key
    job = remote.job
    assert job["spec"]["fit"]["validation_data"]["sample_weight"] == "sample_weight"
    assert job["spec"]["compile"]["loss_weights"] == {"cls": 0.7, "reg": 0.3}
    assert job["spec"]["fit"]["callbacks"][0]["class_name"] == "EarlyStopping"
