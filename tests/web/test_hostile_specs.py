"""Specs that carry code are refused with 422 at submit, and the code they carry never runs.

Each payload would create a file if it ran. The first test proves the payloads are real: plain
Keras, allowed to deserialize unsafely, runs them. trainq refuses them, and the file never appears.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.specs import QUICKSTART
from tests.web.test_api import assert_error, submit, total_jobs

User = dict[str, Any]

_LAMBDA_MODEL = """
import json, sys, keras
path = sys.argv[1]
inputs = keras.Input((28, 28))
payload = eval(f"lambda x: x + len(open({path!r}, 'w').name) * 0")  # the path is in its code
hidden = keras.layers.Lambda(payload, output_shape=(28, 28))(inputs)
outputs = keras.layers.Dense(10)(keras.layers.Flatten()(hidden))
model = keras.Model(inputs, outputs)  # built; the lambda has not run
print(model.to_json())
"""

_LOAD_UNSAFELY = """
import sys, keras
keras.config.enable_unsafe_deserialization()
model = keras.models.model_from_json(open(sys.argv[1]).read())
model(keras.ops.zeros((1, 28, 28)))  # what training would do first
"""


def _python(code: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def lambda_document(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A Functional model's to_json() with a Lambda whose code creates a file when it runs."""
    folder = tmp_path_factory.mktemp("payload")
    target = folder / "lambda-ran"
    document = _python(_LAMBDA_MODEL, str(target))
    assert not target.exists()
    return document, target


def test_the_lambda_payload_is_real(lambda_document: tuple[str, Path], tmp_path: Path) -> None:
    document, target = lambda_document
    saved = tmp_path / "model.json"
    saved.write_text(document)
    _python(_LOAD_UNSAFELY + "\nprint('loaded')", str(saved))
    assert target.exists()  # plain Keras, unsafe deserialization allowed, runs the code
    target.unlink()


def _with_layer(layer: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(QUICKSTART)
    spec["model"]["layers"].insert(1, layer)
    return spec


def _document(**layer_fields: Any) -> dict[str, Any]:
    """The quickstart as a Functional to_json() document, one layer changed."""
    dense = {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
             "config": {"name": "d", "units": 10}, "name": "d",
             "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {
                 "shape": [None, 784], "dtype": "float32", "keras_history": ["f", 0, 0]}}],
                 "kwargs": {}}]}  # fmt: skip
    dense.update(layer_fields)
    spec = copy.deepcopy(QUICKSTART)
    spec["model"] = {"json": {
        "module": "keras.src.models.functional", "class_name": "Functional",
        "registered_name": "Functional", "config": {"name": "m", "layers": [
            {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
             "config": {"batch_shape": [None, 28, 28], "dtype": "float32", "name": "in"},
             "name": "in", "inbound_nodes": []},
            {"module": "keras.layers", "class_name": "Flatten", "registered_name": None,
             "config": {"name": "f"}, "name": "f", "inbound_nodes": [{"args": [{
                 "class_name": "__keras_tensor__", "config": {"shape": [None, 28, 28],
                 "dtype": "float32", "keras_history": ["in", 0, 0]}}], "kwargs": {}}]},
            dense],
            "input_layers": [["in", 0, 0]], "output_layers": [["d", 0, 0]]}}}  # fmt: skip
    return spec


def test_a_plain_functional_document_is_accepted(client: FlaskClient, alice: User) -> None:
    response = submit(client, alice, _document())
    assert response.status_code == 202, response.get_data(as_text=True)


def test_lambda_from_to_json_is_refused(
    client: FlaskClient, alice: User, lambda_document: tuple[str, Path]
) -> None:
    document, target = lambda_document
    spec = copy.deepcopy(QUICKSTART)
    spec["model"] = {"json": document}
    error = assert_error(submit(client, alice, spec), 422, "invalid_spec")
    assert "Lambda" in error["message"]
    assert error["details"]["errors"][0]["field"].startswith("model.json.config.layers[1]")
    assert not target.exists() and total_jobs(client, alice) == 0


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param(_document(module="os", class_name="system"),
                     "model.json.config.layers[2].module", id="module-os"),
        pytest.param(_document(module="subprocess", class_name="Dense"),
                     "model.json.config.layers[2].module", id="module-subprocess"),
        pytest.param(_document(registered_name="Custom>Dense"),
                     "model.json.config.layers[2].registered_name", id="registered-name"),
        pytest.param(_document(module="keras.src.layers.core.lambda_layer", class_name="Lambda"),
                     "model.json.config.layers[2].module", id="lambda-by-module"),
        pytest.param(
            _document(config={"name": "d", "units": 10, "kernel_initializer": {
                "module": "builtins", "class_name": "eval", "config": {}}}),
            "model.json.config.layers[2].config.kernel_initializer.module",
            id="nested-builtins",
        ),
        pytest.param(
            _document(config={"name": "d", "units": 10, "activation": {
                "module": "keras.activations", "class_name": "function", "config": "relu",
                "registered_name": "function"}}),
            "model.json.config.layers[2].config.activation", id="function-object",
        ),
        pytest.param(
            _with_layer({"class_name": "Lambda", "config": {"function": {
                "class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA"}}}}),
            "model.layers[1].class_name", id="lambda-in-layers",
        ),
        pytest.param(
            _with_layer({"class_name": "Dense", "config": {"units": 3, "kernel_initializer": {
                "class_name": "GlorotUniform", "config": {}, "module": "os"}}}),
            "model.layers[1].config.kernel_initializer.module", id="module-in-layers",
        ),
        pytest.param(
            _document(module="keras.src.ops.numpy", class_name="Add", registered_name="Add",
                      config={"name": "d"}, inbound_nodes=[{"args": [{
                          "class_name": "__lambda__", "config": {"value": "4wEAAAAAAAAA"}}],
                          "kwargs": {}}]),
            "model.json.config.layers[2].inbound_nodes[0].args[0].class_name",
            id="lambda-in-an-op-call",
        ),
        pytest.param(
            _document(module="keras.src.ops.core", class_name="VectorizedMap",
                      registered_name="VectorizedMap", config={"name": "d", "function": None}),
            "model.json.config.layers[2].class_name", id="op-that-calls-a-function",
        ),
        pytest.param(
            _document(class_name="IntegerLookup", config={"name": "d", "vocabulary": "/etc/hosts"}),
            "model.json.config.layers[2].config.vocabulary", id="vocabulary-file",
        ),
        pytest.param(
            _with_layer({"class_name": "IntegerLookup", "config": {"vocabulary": "/etc/hosts"}}),
            "model.layers[1].config.vocabulary", id="vocabulary-file-in-layers",
        ),
    ],
)  # fmt: skip
def test_code_carrying_spec_is_refused(
    client: FlaskClient, alice: User, spec: dict[str, Any], field: str
) -> None:
    error = assert_error(submit(client, alice, spec), 422, "invalid_spec")
    assert error["details"]["errors"][0]["field"] == field, error
    assert total_jobs(client, alice) == 0


def test_custom_objects_in_a_document_are_refused(client: FlaskClient, alice: User) -> None:
    spec = _document()
    spec["model"]["json"]["config"]["custom_objects"] = {"x": "os.system"}
    assert_error(submit(client, alice, spec), 422, "invalid_spec")
    spec = _document()
    spec["model"]["json"]["safe_mode"] = False
    assert_error(submit(client, alice, spec), 422, "invalid_spec")
    assert json.dumps(spec)  # plain JSON, refused by content alone
