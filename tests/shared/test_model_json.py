"""model.to_json() documents: Keras's own output passes the allow-lists; anything else does not."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from shared.ml.build import build_model
from shared.spec import model_json
from shared.spec.job import JobSpec
from tests.specs import QUICKSTART


def _zoo() -> dict[str, Any]:
    """A Functional model using many allow-listed layers, as to_json() writes it."""
    import keras
    from keras import layers as L

    image = keras.Input((16, 16, 3), name="image")
    h = L.Rescaling(1 / 255.0)(L.Resizing(12, 12)(L.RandomFlip("horizontal")(image)))
    h = L.Conv2D(
        4,
        3,
        padding="same",
        kernel_regularizer="l2",
        kernel_constraint=keras.constraints.MaxNorm(2.0),
    )(h)
    h = L.BatchNormalization()(L.MaxPooling2D()(h))
    h = L.GlobalAveragePooling2D()(L.SpatialDropout2D(0.1)(h))
    words = keras.Input((5,), name="words", dtype="int32")
    w = L.Embedding(30, 6)(words)
    w = L.Bidirectional(L.GRU(3, return_sequences=True))(w)
    w = L.TimeDistributed(L.Dense(6))(w)
    w = L.Attention()([w, w])
    w = L.LayerNormalization()(L.Add()([w, L.AdditiveAttention()([w, w])]))
    w = L.Flatten()(L.Conv1D(2, 2)(w))
    merged = L.Concatenate()([h, w, L.Dot(axes=1)([h, h])])
    out = L.Dense(
        2,
        activation="softmax",
        name="label",
        kernel_initializer=keras.initializers.HeNormal(seed=1),
    )(L.Dropout(0.2)(merged))
    value = L.Dense(1, name="value")(L.LeakyReLU(0.1)(merged))
    document = json.loads(keras.Model([image, words], [out, value]).to_json())
    keras.backend.clear_session()
    return document  # type: ignore[no-any-return]


def test_keras_own_document_passes_and_rebuilds() -> None:
    document = _zoo()
    checked = model_json.parse(json.dumps(document))
    spec = copy.deepcopy(QUICKSTART)
    spec["model"] = {"json": checked}
    model = build_model(JobSpec.model_validate(spec), {})
    assert [t.shape[1:] for t in model.outputs] == [(2,), (1,)]
    assert {"Bidirectional", "TimeDistributed", "Attention", "Dot"} <= {
        type(layer).__name__ for layer in model.layers
    }
    assert set(model_json.input_layers(checked)) == {"image", "words"}


def _first_dense(document: dict[str, Any]) -> dict[str, Any]:
    return next(layer for layer in document["config"]["layers"] if layer["class_name"] == "Dense")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: _first_dense(d).update(module="os"), "'os' is not one of Keras's own modules"),
        (lambda d: _first_dense(d).update(registered_name="my>Dense"), "not Keras's own name"),
        (lambda d: _first_dense(d).update(class_name="Lambda"), "'Lambda' is not an allowed"),
        (lambda d: _first_dense(d)["config"].update(activation="os.system"), "not a known"),
        (lambda d: _first_dense(d)["config"].update(function="x"), "not allowed"),
        (lambda d: _first_dense(d)["config"]["kernel_initializer"].update(
            class_name="__lambda__"), "not an allowed class"),
        (lambda d: d.update(class_name="Custom"), "Sequential or Functional"),
        (lambda d: d["config"]["layers"][0]["config"].update(__x=1), "not allowed"),
        (lambda d: d.update(module="keras.src.models.custom"), "not one of Keras's own"),
        (lambda d: _first_dense(d).update(module="keras.initializers"), "not an allowed class"),
    ],
)  # fmt: skip
def test_anything_else_is_refused(change: Any, words: str) -> None:
    document = _zoo()
    change(document)
    with pytest.raises(model_json.Refused, match=words):
        model_json.parse(document)


def test_compile_config_is_dropped() -> None:
    document = _zoo()
    document["compile_config"] = {"optimizer": {"module": "os", "class_name": "system"}}
    assert "compile_config" not in model_json.parse(document)
