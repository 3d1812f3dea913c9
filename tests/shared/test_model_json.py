"""model.to_json() documents: Keras's own output passes the allow-lists; anything else does not."""

from __future__ import annotations

import copy
import functools
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


def _ops_model() -> Any:
    """A Functional model of Keras operation layers only, as a model that applies ops writes."""
    import keras
    import numpy as np
    from keras import ops

    x = keras.Input((4, 6), name="x")
    a = ops.concatenate([ops.add(x, x), x * 2 - 1], axis=-1)  # Add, Multiply, Subtract, ...
    b = a[:, 1:3, ::2] + np.arange(6, dtype="float32")  # GetItem (slices), a numpy constant
    c = ops.mean(b, axis=1) / 3 + ops.ones((6,))  # Mean, TrueDivide, a tensor constant
    d = keras.activations.gelu(ops.reshape(x[..., 0], (-1, 4)))  # ellipsis, Reshape, Gelu
    e = ops.einsum("bij,bkj->bik", x, x)[:, None, 0]  # Einsum, a new axis
    f = ops.where(x > 0, ops.sqrt(ops.abs(x)), ops.nn.softmax(x))
    g = keras.activations.relu(ops.cast(ops.transpose(f, (0, 2, 1)), "float32"))
    return keras.Model(x, [c, d, e, g, ops.matmul(c, ops.expand_dims(c, -1))])


def test_operation_layers_pass_and_rebuild_the_same_model() -> None:
    import keras
    import numpy as np

    original = _ops_model()
    document = json.loads(original.to_json())
    written = {(layer["module"], layer["class_name"]) for layer in document["config"]["layers"]}
    assert {("keras.src.ops.numpy", "GetItem"), ("keras.src.ops.nn", "Gelu"),
            ("keras.src.activations.activations", "ReLU"), ("keras.src.ops.core", "Cast")} <= (
        written
    )  # fmt: skip
    spec = copy.deepcopy(QUICKSTART)
    spec["model"] = {"json": model_json.parse(json.dumps(document))}
    rebuilt = build_model(JobSpec.model_validate(spec), {})
    x = np.random.default_rng(0).normal(size=(2, 4, 6)).astype("float32")
    for want, got in zip(original(x), rebuilt(x), strict=True):  # no weights: the same values
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6)
    keras.backend.clear_session()


@functools.cache
def _ops_document() -> str:
    import keras

    document = str(_ops_model().to_json())
    keras.backend.clear_session()
    return document


def _op(document: dict[str, Any], class_name: str) -> dict[str, Any]:
    return next(x for x in document["config"]["layers"] if x["class_name"] == class_name)


def _call_arg(document: dict[str, Any], value: Any) -> None:
    _op(document, "Add")["inbound_nodes"][0]["args"][1] = value


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: _op(d, "Add").update(module="keras.src.ops.core", class_name="Cond",
                                        registered_name="Cond"), "'Cond' is not an allowed"),
        (lambda d: _op(d, "Add").update(module="keras.src.ops.core", class_name="WhileLoop",
                                        registered_name=None), "'WhileLoop' is not an allowed"),
        (lambda d: _op(d, "Add").update(module="keras.src.ops.linalg", class_name="JVP"),
         "'JVP' is not an allowed"),
        (lambda d: _op(d, "Add").update(class_name="Operation", registered_name=None),
         "'Operation' is not an allowed"),
        (lambda d: _op(d, "Add").update(class_name="Lambda"), "'Lambda' is not an allowed"),
        (lambda d: _op(d, "Add").update(module="keras.src.ops.operation"),
         "not one of Keras's own modules"),
        (lambda d: _op(d, "Add").update(module="keras.src.ops"), "not one of Keras's own"),
        (lambda d: _op(d, "Add").update(registered_name="my>Add"), "not Keras's own name"),
        (lambda d: _op(d, "Gelu").update(module=None), "'Gelu' is not an allowed"),
        (lambda d: _op(d, "Gelu").pop("module"), "'Gelu' is not an allowed"),
        (lambda d: _op(d, "Gelu")["config"].update(function="x"), "not allowed"),
        (lambda d: _call_arg(d, {"class_name": "__lambda__", "config": {"value": "4wEA"}}),
         "'__lambda__' is not an allowed"),
        (lambda d: _call_arg(d, {"module": "builtins", "class_name": "function",
                                 "config": "eval", "registered_name": "function"}),
         "'builtins' is not one of Keras's own"),
        (lambda d: _call_arg(d, {"class_name": "function", "config": "eval"}),
         "'function' is not an allowed"),
        (lambda d: _call_arg(d, {"class_name": "__bytes__", "config": {"value": "x"}}),
         "'__bytes__' is not an allowed"),
        (lambda d: _call_arg(d, {"class_name": "__typespec__", "config": []}),
         "'__typespec__' is not an allowed"),
        (lambda d: _call_arg(d, {"class_name": "__slice__", "config": {
            "start": "__import__('os')", "stop": None, "step": None}}), "an integer, a tensor"),
        (lambda d: _call_arg(d, {"class_name": "__slice__", "config": {
            "start": 1, "stop": None, "step": None, "module": "os"}}), "its start, stop and step"),
        (lambda d: _call_arg(d, {"class_name": "__ellipsis__", "config": {"x": 1}}),
         "the ellipsis has no config"),
        (lambda d: _call_arg(d, {"class_name": "__numpy__", "config": {
            "value": [1], "dtype": "object"}}), "a numeric dtype"),
        (lambda d: _call_arg(d, {"class_name": "__numpy__", "config": {
            "value": ["os"], "dtype": "float32"}}), "finite numbers only"),
        (lambda d: _call_arg(d, {"class_name": "__tensor__", "config": {
            "value": [1.0], "dtype": "float32", "module": "os"}}), "its value and a numeric"),
        (lambda d: _op(d, "Reshape")["config"].update(newshape={
            "class_name": "__numpy__", "config": {"value": [4], "dtype": "int32"}}),
         "'__numpy__' is not an allowed"),  # constants only in a call, where Keras writes them
        (lambda d: _op(d, "Gelu")["config"].update(approximate={
            "module": "keras.src.ops.numpy", "class_name": "Add", "config": {}}),
         "'Add' is not an allowed"),
    ],
)  # fmt: skip
def test_operation_layers_are_only_keras_own_ops(change: Any, words: str) -> None:
    document = json.loads(_ops_document())
    change(document)
    with pytest.raises(model_json.Refused, match=words):
        model_json.parse(document)


def test_a_wrapper_wraps_a_layer_not_an_op() -> None:
    document = _zoo()
    wrapper = next(x for x in document["config"]["layers"] if x["class_name"] == "Bidirectional")
    wrapper["config"]["layer"] = {"module": "keras.src.ops.nn", "class_name": "Relu",
                                  "config": {"name": "r"}, "registered_name": "Relu"}  # fmt: skip
    with pytest.raises(model_json.Refused, match="'Relu' is not an allowed class here"):
        model_json.parse(document)


def test_the_allow_lists_name_keras_own_classes() -> None:
    import importlib
    import inspect

    import keras
    from keras.src.ops.operation import Operation

    from shared.spec.allowlists import APPLICATION_LAYERS, LAYERS, OPS

    for module, names in OPS.items():
        found = vars(importlib.import_module(module))
        for name in names:
            op = found.get(name)
            assert inspect.isclass(op) and issubclass(op, Operation), (module, name)
            assert op.__module__ == module, (module, name)
    core = vars(importlib.import_module("keras.src.ops.core"))
    for name in ("Cond", "Switch", "WhileLoop", "ForiLoop", "Map", "Scan", "VectorizedMap"):
        assert issubclass(core[name], Operation) and name not in OPS["keras.src.ops.core"]
    for module, names in APPLICATION_LAYERS.items():
        for name in names:
            assert issubclass(vars(importlib.import_module(module))[name], keras.layers.Layer)
    for name in LAYERS:
        assert issubclass(getattr(keras.layers, name), keras.layers.Layer), name


def test_a_nested_model_and_preprocessing_with_its_state_pass_and_rebuild() -> None:
    import keras
    from keras import layers

    numbers = keras.Input((3,), name="numbers")
    stem = keras.Sequential([layers.Dense(4), layers.LayerNormalization()], name="stem")
    h = stem(layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 9.0])(numbers))
    bins = layers.Discretization(bin_boundaries=[0.0, 1.0])(numbers)
    codes = layers.IntegerLookup(vocabulary=[3, 5], output_mode="multi_hot")(bins)
    out = layers.Dense(1)(layers.concatenate([h, codes]))
    document = json.loads(keras.Model(numbers, out).to_json())
    keras.backend.clear_session()
    spec = copy.deepcopy(QUICKSTART)
    spec["model"] = {"json": model_json.parse(document)}
    model = build_model(JobSpec.model_validate(spec), {})
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"Sequential", "Normalization", "Discretization", "IntegerLookup"} <= kinds
    keras.backend.clear_session()


def _preprocessing(layer: dict[str, Any]) -> dict[str, Any]:
    return {"module": "keras.src.models.functional", "class_name": "Functional", "config": {
        "name": "m", "layers": [{"module": "keras.layers", "name": "p", "inbound_nodes": [],
                                 "registered_name": None, **layer}]}}  # fmt: skip


@pytest.mark.parametrize(
    ("layer", "words"),
    [
        ({"class_name": "Normalization", "config": {"mean": [1.0]}},
         r"config.variance: Normalization takes its mean and variance together, or neither"),
        ({"class_name": "Discretization", "config": {"num_bins": 4}},
         r"config.bin_boundaries: Discretization needs its bin_boundaries"),
        ({"class_name": "IntegerLookup", "config": {"vocabulary": None}},
         r"config.vocabulary: IntegerLookup needs its vocabulary"),
        ({"class_name": "IntegerLookup", "config": {"vocabulary": "/etc/passwd"}},
         r"config.vocabulary: IntegerLookup's vocabulary is a list of values \(a file is never"),
        ({"class_name": "IntegerLookup", "config": {"vocabulary": [1], "output_mode": "tf_idf"}},
         r"config.idf_weights: IntegerLookup with output_mode tf_idf needs its idf_weights"),
        ({"class_name": "StringLookup", "config": {"vocabulary": ["a"]}},
         r"'StringLookup' is not an allowed class"),
    ],
)  # fmt: skip
def test_preprocessing_left_to_adapt_is_refused(layer: dict[str, Any], words: str) -> None:
    with pytest.raises(model_json.Refused, match=words):
        model_json.parse(_preprocessing(layer))


_UNADAPTED = {"class_name": "Normalization", "config": {"axis": [-1], "mean": None,
                                                        "variance": None}}  # fmt: skip


def test_a_normalization_of_the_model_itself_may_be_left_to_adapt() -> None:
    """The worker adapts it on the training data (tests/worker/test_adapt.py)."""
    model_json.parse(_preprocessing(_UNADAPTED))
    called_once = _preprocessing({**_UNADAPTED, "inbound_nodes": [{"args": [], "kwargs": {}}]})
    model_json.parse(called_once)


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ("nested", r"config.layers\[0\].config.layers\[0\].config.mean"),
        ("shared", r"config.layers\[0\].config.mean"),
    ],
)
def test_a_normalization_left_to_adapt_where_its_input_is_not_computed_is_refused(
    where: str, path: str
) -> None:
    if where == "nested":
        document = _preprocessing(_preprocessing(_UNADAPTED))
    else:  # called on two tensors: which input would it adapt on?
        node = {"args": [], "kwargs": {}}
        document = _preprocessing({**_UNADAPTED, "inbound_nodes": [node, node]})
    with pytest.raises(model_json.Refused, match=path + r": Normalization without its mean and "
                       r"variance is adapted on the training data only as a layer of the model "
                       r"itself, called once"):  # fmt: skip
        model_json.parse(document)


def _dense(i: int) -> dict[str, Any]:
    return {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
            "config": {"name": f"d{i}", "units": 1}, "name": f"d{i}",
            "inbound_nodes": []}  # fmt: skip


def test_the_layer_count_guards_against_pathological_documents_only() -> None:
    def functional(layers: list[dict[str, Any]]) -> dict[str, Any]:
        return {"module": "keras.src.models.functional", "class_name": "Functional",
                "config": {"name": "m", "layers": layers}}  # fmt: skip

    model_json.parse(functional([_dense(i) for i in range(2000)]))  # more than NASNetLarge's
    with pytest.raises(model_json.Refused, match="at most 5000 layers"):
        model_json.parse(functional([_dense(i) for i in range(5001)]))
    nested = {"module": "keras", "class_name": "Sequential", "registered_name": None,
              "config": {"name": "s", "layers": [_dense(i) for i in range(4000)]}}  # fmt: skip
    with pytest.raises(model_json.Refused, match="nested models' included"):
        model_json.parse(functional([nested, *(_dense(i) for i in range(1001))]))


def test_image_preprocessing_from_json_saves_as_h5(tmp_path: Any) -> None:
    """JSON makes the tuples of RandomContrast's config lists, which Keras keeps as tracked lists
    that its .h5 saving cannot copy: the build gives them back as tuples."""
    import keras

    inputs = keras.Input((8, 8, 3))
    augmented = keras.Sequential([keras.layers.RandomContrast(0.1)])(inputs)
    document = keras.Model(inputs, keras.layers.Dense(1)(augmented)).to_json()
    spec = copy.deepcopy(QUICKSTART)
    spec["model"] = {"json": document}
    build_model(JobSpec.model_validate(spec), {}).save(tmp_path / "document.h5")
    spec = copy.deepcopy(QUICKSTART)
    spec["model"]["layers"].insert(0, {"class_name": "RandomContrast", "config": {
        "factor": [0.1, 0.2], "value_range": [0, 1]}})  # fmt: skip
    build_model(JobSpec.model_validate(spec), (28, 28)).save(tmp_path / "layers.h5")
    keras.backend.clear_session()
