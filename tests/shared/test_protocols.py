"""The protocols' codecs over the one predict: TF Serving's rows and columns and KServe v2's
typed tensors (as JSON and as the binary extension) answer what the native predict answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from shared.errors import InvalidInput
from shared.ml.serving import Served, predict, rows_to_inputs
from shared.protocols import tfserving, v2
from shared.protocols.tensors import arrays_of, outputs_of
from tests.conformance.test_models import two_output_model


@pytest.fixture(scope="module")
def two_heads() -> Served:
    import keras

    keras.utils.set_random_seed(5)
    return Served(two_output_model(), 0)


def _batch() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "a": rng.normal(size=(3, 4)).astype("float32"),
        "b": rng.normal(size=(3, 3)).astype("float32"),
    }


def test_two_outputs_by_name_a_classifier_head_and_a_regression_head(two_heads: Served) -> None:
    heads = predict(two_heads, _batch(), 1.0)
    assert [h.name for h in heads] == ["cls", "reg"]
    cls, reg = heads
    assert cls.logits is not None and cls.logits.shape == (3, 3) and cls.classes is not None
    np.testing.assert_array_equal(cls.classes, cls.logits.argmax(axis=1))
    assert reg.logits is None and reg.values.shape == (3, 1)
    eager = two_heads.model([_batch()["a"], _batch()["b"]], training=False)
    np.testing.assert_allclose(cls.logits, np.asarray(eager[0]), atol=1e-6)
    assert [o.name for o in outputs_of(two_heads.signature)] == [
        "cls/logits", "cls/probabilities", "cls/classes", "reg",
    ]  # fmt: skip


def test_tf_serving_rows_and_columns_answer_the_native_predict(two_heads: Served) -> None:
    batch = _batch()
    native = arrays_of(predict(two_heads, batch, 1.0))
    rows = [{"a": batch["a"][i].tolist(), "b": batch["b"][i].tolist()} for i in range(3)]
    request = tfserving.parse_predict({"instances": rows}, two_heads.signature)
    answer = tfserving.predict_answer(predict(two_heads, request.inputs, 1.0), request.rows)
    assert [p["cls/classes"] for p in answer["predictions"]] == native["cls/classes"].tolist()
    np.testing.assert_allclose([p["cls/logits"] for p in answer["predictions"]],
                               native["cls/logits"], atol=1e-6)  # fmt: skip
    columns = {
        "signature_name": "serving_default",
        "inputs": {k: v.tolist() for k, v in batch.items()},
    }
    request = tfserving.parse_predict(columns, two_heads.signature)
    answer = tfserving.predict_answer(predict(two_heads, request.inputs, 1.0), request.rows)
    np.testing.assert_allclose(answer["outputs"]["reg"], native["reg"], atol=1e-6)
    with pytest.raises(InvalidInput, match="not found in signature def"):
        tfserving.parse_predict({"signature_name": "other", "instances": rows}, two_heads.signature)
    with pytest.raises(InvalidInput, match="inputs"):
        tfserving.parse_predict({"instances": [[1, 2, 3, 4]]}, two_heads.signature)


def _v2_input(name: str, array: np.ndarray, binary: bool) -> dict[str, Any]:
    tensor: dict[str, Any] = {"name": name, "shape": list(array.shape), "datatype": "FP32"}
    if binary:
        tensor["parameters"] = {"binary_data_size": array.nbytes}
    else:
        tensor["data"] = array.reshape(-1).tolist()
    return tensor


@pytest.mark.parametrize("binary", [False, True])
def test_v2_typed_tensors_answer_the_native_predict(two_heads: Served, binary: bool) -> None:
    batch = _batch()
    native = arrays_of(predict(two_heads, batch, 1.0))
    body = {"id": "r1", "inputs": [_v2_input(k, v, binary) for k, v in batch.items()],
            "outputs": [{"name": "cls/classes"}, {"name": "cls/logits"}]}  # fmt: skip
    raw = b"".join(v.tobytes() for v in batch.values()) if binary else b""
    request = v2.parse_infer(body, two_heads.signature, raw)
    answer = v2.infer_answer("m", 2, request, predict(two_heads, request.inputs, 1.0))
    assert answer["model_name"] == "m" and answer["model_version"] == "2" and answer["id"] == "r1"
    classes, logits = answer["outputs"]
    assert classes == {"name": "cls/classes", "datatype": "INT64", "shape": [3],
                       "data": native["cls/classes"].tolist()}  # fmt: skip
    np.testing.assert_allclose(np.reshape(logits["data"], logits["shape"]), native["cls/logits"],
                               atol=1e-6)  # fmt: skip


def test_v2_refuses_what_does_not_add_up(two_heads: Served) -> None:
    batch = _batch()
    good = [_v2_input(k, v, False) for k, v in batch.items()]
    for broken, match in [
        ({**good[0], "shape": [3, 5]}, "holds 15 values"),
        ({**good[0], "datatype": "BYTES"}, "datatype"),
        ({**good[0], "data": ["x"] * 12}, "not FP32"),
        ({"name": "a", "shape": [3, 4], "datatype": "FP32", "parameters": {"binary_data_size": 48}},
         "neither data"),
    ]:  # fmt: skip
        with pytest.raises(InvalidInput, match=match):
            v2.parse_infer({"inputs": [broken, good[1]]}, two_heads.signature)
    with pytest.raises(InvalidInput, match="unknown outputs"):
        v2.parse_infer({"inputs": good, "outputs": [{"name": "nope"}]}, two_heads.signature)
    meta = v2.model_metadata("m", [1, 2], two_heads.signature)
    assert meta["inputs"] == [{"name": "a", "datatype": "FP32", "shape": [-1, 4]},
                              {"name": "b", "datatype": "FP32", "shape": [-1, 3]}]  # fmt: skip


def test_native_rows_name_each_input_of_a_model_with_several(two_heads: Served) -> None:
    with pytest.raises(InvalidInput, match="instance 0 must be an object"):
        rows_to_inputs(two_heads.signature, [[0.0] * 4])
    inputs = rows_to_inputs(two_heads.signature, [{"a": [0.0] * 4, "b": [1.0] * 3}])
    assert set(inputs) == {"a", "b"}
