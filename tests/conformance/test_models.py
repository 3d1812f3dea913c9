"""Models as a model.to_json() document: Sequential and Functional, multi-input, multi-output."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from tests.conformance.conftest import Runner, history, npz


def two_output_model() -> Any:
    """Two inputs, a classification head and a regression head (the quickstart's example)."""
    import keras

    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    h = keras.layers.Concatenate()([a, b])
    h = keras.layers.Dense(16, activation="relu")(h)
    return keras.Model(
        [a, b], [keras.layers.Dense(3, name="cls")(h), keras.layers.Dense(1, name="reg")(h)]
    )


def two_output_data(n: int = 192) -> dict[str, np.ndarray]:
    """Arrays named for the model's inputs and outputs."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(n, 4)).astype("float32"), rng.normal(size=(n, 3)).astype("float32")
    return {
        "x_train.a": a, "x_train.b": b,
        "y_train.cls": np.argmax(a[:, :3] + b, axis=1),
        "y_train.reg": (a.sum(axis=1) - b.sum(axis=1)).astype("float32"),
    }  # fmt: skip


def two_output_spec(dataset_id: str, loss_weights: Any) -> dict[str, Any]:
    """The two-output model as to_json(), with a loss per output and the given loss_weights."""
    import keras

    document = two_output_model().to_json()
    keras.backend.clear_session()
    return {
        "dataset": {"id": dataset_id},
        "model": {"json": document},
        "compile": {
            "optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.01}},
            "loss": {"cls": {"class_name": "SparseCategoricalCrossentropy",
                             "config": {"from_logits": True}}, "reg": "mse"},
            "loss_weights": loss_weights,
            "metrics": {"cls": ["accuracy"], "reg": ["mae"]},
        },
        "fit": {"epochs": 2, "batch_size": 32},
        "seed": 11,
    }  # fmt: skip


def two_output_job(runner: Runner, loss_weights: Any) -> dict[str, Any]:
    """Upload the data and run the two-output job to the end."""
    dataset = runner.upload(npz(**two_output_data()), name="two-heads")
    return runner.run(two_output_spec(dataset["id"], loss_weights))


def test_loss_weights_by_output_name(runner: Runner) -> None:
    job = two_output_job(runner, loss_weights={"cls": 0.2, "reg": 0.8})
    one = {"a": [0.0] * 4, "b": [1.0] * 3}  # each input by name, each output by name
    predict = runner.client.post(f"/api/v1/jobs/{job['id']}/predict", json={"instances": [one]},
                                 headers=runner.headers)  # fmt: skip
    assert predict.status_code == 200, predict.get_data(as_text=True)
    outputs = predict.get_json()["predictions"][0]["outputs"]
    assert set(outputs["cls"]) == {"logits", "probabilities", "class"}
    assert len(outputs["reg"]["values"]) == 1
    for row in job["history"]:
        m = row["metrics"]
        assert {"cls_accuracy", "reg_mae"} <= set(m)
        assert m["loss"] == pytest.approx(0.2 * m["cls_loss"] + 0.8 * m["reg_loss"], rel=1e-5)


def test_sequential_document_trains_as_its_layers_list(runner: Runner, toy_id: str) -> None:
    import keras

    from tests.conformance.conftest import mlp_spec

    layers_spec = mlp_spec(toy_id)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3)])  # fmt: skip
    document_spec = {**layers_spec, "model": {"json": json.loads(model.to_json())}}
    keras.backend.clear_session()
    assert history(runner.run(document_spec)) == history(runner.run(layers_spec))


@pytest.mark.slow
def test_recurrent_attention_and_merge_layers(runner: Runner) -> None:
    import keras

    rng = np.random.default_rng(0)
    tokens = keras.Input((6,), name="tokens")
    h = keras.layers.Embedding(20, 8)(tokens)
    h = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True))(h)
    h = keras.layers.Add()([h, keras.layers.MultiHeadAttention(2, 4)(h, h)])
    h = keras.layers.LayerNormalization()(h)
    out = keras.layers.Dense(2, name="out")(keras.layers.GlobalAveragePooling1D()(h))
    document = keras.Model(tokens, out).to_json()
    keras.backend.clear_session()
    x = rng.integers(0, 20, size=(64, 6))
    dataset = runner.upload(npz(x_train=x, y_train=(x[:, 0] > 9).astype("int64")))
    job = runner.run({
        "dataset": {"id": dataset["id"]}, "model": {"json": document},
        "compile": {"optimizer": "adam", "loss": {"class_name": "SparseCategoricalCrossentropy",
                    "config": {"from_logits": True}}, "metrics": ["accuracy"]},
        "fit": {"epochs": 1, "batch_size": 16},
    })  # fmt: skip
    assert [h["epoch"] for h in job["history"]] == [1]
    kinds = {type(layer).__name__ for layer in runner.model(job).layers}
    assert {"Bidirectional", "MultiHeadAttention", "Add", "Embedding"} <= kinds
