"""Checked at submit: a spec that cannot build or train against its dataset is refused with
Keras's own message and the field it came from; nothing is recorded."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.specs import QUICKSTART
from tests.web.test_api import assert_error, submit, total_jobs

Spec = dict[str, Any]


def _q(change: Callable[[Spec], Any]) -> Spec:
    spec = copy.deepcopy(QUICKSTART)
    change(spec)
    return spec


def _document(batch_shape: list[Any]) -> Spec:
    import keras

    inputs = keras.Input(batch_shape[1:], name="pixels")
    document = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs))).to_json()
    keras.backend.clear_session()
    return _q(lambda s: s.update(model={"json": document}))


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        pytest.param(lambda s: s["model"]["layers"][1]["config"].update(units=-3),
                     "model.layers[1].config.units", "expected a positive integer", id="units"),
        pytest.param(lambda s: s["model"]["layers"][0]["config"].update(input_shape=[13]),
                     "model.layers[0].config.input_shape", "the dataset's are [28, 28]",
                     id="input-shape-not-the-datasets"),
        pytest.param(lambda s: s["model"]["layers"].insert(1, {"class_name": "Reshape",
                                                               "config": {"target_shape": [5, 5]}}),
                     "model.layers[1].config.target_shape", "total size", id="reshape"),
        pytest.param(lambda s: s["compile"].update(loss="categorical_crossentropy"),
                     "compile.loss", "same rank", id="loss-does-not-fit-the-labels"),
        pytest.param(lambda s: s["compile"].update(loss_weights=[1.0, 2.0]),
                     "compile.loss_weights", "must match the number of losses", id="loss-weights"),
        pytest.param(lambda s: s["compile"].update(metrics={"nosuch": ["accuracy"]}),
                     "compile.metrics.nosuch", "no output 'nosuch'", id="metrics-unknown-output"),
        pytest.param(lambda s: s["compile"].update(
                         optimizer={"class_name": "Adam", "config": {"learning_rat": 0.1}}),
                     "compile.optimizer", "learning_rat", id="optimizer-config-typo"),
        pytest.param(lambda s: s["compile"].update(
                         loss={"class_name": "MeanSquaredError", "config": {"from_logits": True}}),
                     "compile.loss", "from_logits", id="loss-config"),
        pytest.param(lambda s: s["fit"].update(
                         callbacks=[{"class_name": "EarlyStopping", "config": {"patiense": 1}}]),
                     "fit.callbacks[0].config", "patiense", id="callback-config"),
        pytest.param(lambda s: s["fit"].update(class_weight={"10": 1.0}),
                     "fit.class_weight", "class 10 does not exist", id="class-weight"),
        pytest.param(lambda s: s["fit"].update(sample_weight=[1.0, 2.0]),
                     "fit.sample_weight", "2 weights for 5000 training", id="sample-weight"),
        pytest.param(lambda s: s["fit"].update(sample_weight="weights"),
                     "fit.sample_weight", "no array 'weights'", id="sample-weight-array"),
        pytest.param(lambda s: s["fit"].update(validation_split=0.0, validation_data={
                         "x": [[[0] * 28] * 27], "y": [1]}),
                     "fit.validation_data.x", "shape [28, 28]", id="inline-validation-shape"),
        pytest.param(lambda s: s["fit"].update(initial_epoch=5),
                     "fit.initial_epoch", "must be below epochs", id="initial-epoch"),
        pytest.param(lambda s: s["fit"].update(validation_data="test"),
                     "fit.validation_data", "validation_split or validation_data", id="both"),
        pytest.param(lambda s: s["compile"].update(loss={"class_name": "MeanSquaredError",
                                                         "config": {"reduction": "max"}}),
                     "compile.loss.config.reduction", "not a reduction", id="reduction"),
        pytest.param(lambda s: s["fit"].update(workers=0), "fit.workers", "greater than",
                     id="workers"),
    ],
)  # fmt: skip
def test_refused_at_submit_with_the_field(
    client: FlaskClient, alice: dict[str, Any], change: Callable[[Spec], Any], field: str,
    words: str,
) -> None:  # fmt: skip
    error = assert_error(submit(client, alice, _q(change)), 422, "invalid_spec")
    first = error["details"]["errors"][0]
    assert first["field"] == field, error
    assert words in first["message"], error
    assert "\x1b[" not in first["message"]
    assert total_jobs(client, alice) == 0


def test_document_whose_input_is_not_the_datasets(
    client: FlaskClient, alice: dict[str, Any]
) -> None:
    error = assert_error(submit(client, alice, _document([None, 13])), 422, "invalid_spec")
    assert (
        error["details"]["errors"][0]["field"] == "model.json.config.layers[0].config.batch_shape"
    )
    assert "the dataset's are [28, 28]" in error["message"]
    assert submit(client, alice, _document([None, 28, 28])).status_code == 202


def test_a_layers_list_may_start_with_its_input_layer(
    client: FlaskClient, alice: dict[str, Any]
) -> None:
    def first(shape: list[int]) -> Callable[[Spec], Any]:
        return lambda s: s["model"]["layers"].insert(
            0, {"class_name": "InputLayer", "config": {"shape": shape}}
        )

    assert submit(client, alice, _q(first([28, 28]))).status_code == 202
    error = assert_error(submit(client, alice, _q(first([28, 29]))), 422, "invalid_spec")
    assert error["details"]["field"] == "model.layers[0].config.shape"
