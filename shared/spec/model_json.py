"""Checks a whole ``model.to_json()`` document against the allow-lists, before Keras sees it.

Keras writes ``module`` and ``registered_name`` keys into every object. A document is accepted only
when every object is one of Keras's own allow-listed classes, in the module Keras itself writes
for it, with no registered name other than Keras's own: so the deserializer it is later handed to
(in safe mode) can only look up Keras's built-in classes. Nothing here imports Keras.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from shared.spec.allowlists import (
    ACTIVATIONS,
    FORBIDDEN_KEYS,
    LAYER_KEYS,
    LAYERS,
    MODELS,
    MODULES,
    NESTED,
)

MAX_DEPTH = 24
MAX_LAYERS = 500
_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64", "int8", "int16", "int32",
                     "int64", "uint8", "uint16", "bool", "string", None})  # fmt: skip
# The keys Keras writes around an object's config.
_OBJECT_KEYS = frozenset({"module", "class_name", "config", "registered_name",
                          "build_config", "compile_config", "name", "inbound_nodes",
                          "shared_object_id"})  # fmt: skip
_SAFE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Keys that never belong in a config: they name code, or ask for it to be loaded.
_CODE_KEYS = FORBIDDEN_KEYS - {"module", "registered_name"}


class Refused(ValueError):
    """A document the allow-lists refuse; the message starts with the offending path."""


def parse(document: Any) -> dict[str, Any]:
    """The document as a dict (a to_json() string is parsed), checked; compile_config dropped."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as exc:
            raise Refused(f"config: not a JSON document: {exc}") from exc
    if not isinstance(document, dict):
        raise Refused("config: a model.to_json() document is a JSON object")
    document = dict(document)
    document.pop("compile_config", None)  # compile parameters belong in the spec's compile
    if document.get("class_name") not in MODELS:
        raise Refused(
            f"class_name: a model document is Sequential or Functional, "
            f"not {document.get('class_name')!r}"
        )
    _object(document, "", 0, kinds=MODELS)
    layers = document.get("config", {}).get("layers")
    if not isinstance(layers, list) or not layers:
        raise Refused("config.layers: a model document lists its layers")
    if len(layers) > MAX_LAYERS:
        raise Refused(f"config.layers: at most {MAX_LAYERS} layers")
    return document


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _object(value: dict[str, Any], path: str, depth: int, kinds: frozenset[str]) -> None:
    name = value.get("class_name")
    if not isinstance(name, str):
        raise Refused(f"{_join(path, 'class_name')}: must be a string")
    if name == "__keras_tensor__":
        return _tensor(value, path)
    if name == "__tuple__":
        if set(value) != {"class_name", "config"} or set(value["config"] or {}) != {"value"}:
            raise Refused(f"{_join(path, 'config')}: a tuple holds only its value")
        return _value(value["config"]["value"], _join(path, "config.value"), depth + 1)
    extra = set(value) - _OBJECT_KEYS
    if extra:
        raise Refused(f"{_join(path, sorted(extra)[0])}: not allowed in a model document")
    module = value.get("module")
    if module is not None and (not isinstance(module, str) or module not in MODULES):
        raise Refused(
            f"{_join(path, 'module')}: {module!r} is not one of Keras's own modules "
            f"({', '.join(sorted(MODULES))})"
        )
    if name not in kinds or (module is not None and name not in MODULES[module]):
        raise Refused(f"{_join(path, 'class_name')}: {name!r} is not an allowed class here")
    registered = value.get("registered_name")
    if registered is not None and registered != name:  # Keras's own: None or the class name
        raise Refused(
            f"{_join(path, 'registered_name')}: {registered!r} is not Keras's own name for {name}"
        )
    config = value.get("config", {})
    if not isinstance(config, dict):
        raise Refused(f"{_join(path, 'config')}: must be an object")
    for key in ("activation", "recurrent_activation"):
        act = config.get(key)
        if act is not None and (not isinstance(act, str) or act not in ACTIVATIONS):
            raise Refused(f"{_join(path, 'config.' + key)}: {act!r} is not a known activation")
    for key, item in config.items():
        item_path = _join(_join(path, "config"), key)
        if key in _CODE_KEYS or key.startswith("__") or not _SAFE_KEY.match(key):
            raise Refused(f"{item_path}: not allowed in a model document")
        if key == "layers" and name in MODELS:
            if not isinstance(item, list):
                raise Refused(f"{item_path}: must be a list")
            for i, layer in enumerate(item):
                _layer(layer, _join(item_path, i), depth + 1)
        elif key in LAYER_KEYS and name in LAYERS:
            if item is not None:
                _layer(item, item_path, depth + 1)
        else:
            _value(item, item_path, depth + 1)
    for key in ("build_config", "inbound_nodes", "name", "shared_object_id"):
        if key in value:
            _value(value[key], _join(path, key), depth + 1)


def _layer(value: Any, path: str, depth: int) -> None:
    if not isinstance(value, dict) or "class_name" not in value:
        raise Refused(f"{path}: a layer is an object with class_name and config")
    if depth > MAX_DEPTH:
        raise Refused(f"{path}: nested too deeply")
    _object(value, path, depth, kinds=LAYERS)


def _tensor(value: dict[str, Any], path: str) -> None:
    config = value.get("config")
    if set(value) != {"class_name", "config"} or not isinstance(config, dict):
        raise Refused(f"{path}: a tensor reference holds only its config")
    if set(config) - {"shape", "dtype", "keras_history"}:
        raise Refused(f"{_join(path, 'config')}: unexpected keys in a tensor reference")
    shape, history = config.get("shape"), config.get("keras_history")
    if not isinstance(shape, list) or not all(d is None or type(d) is int for d in shape):
        raise Refused(f"{_join(path, 'config.shape')}: a list of sizes")
    if config.get("dtype") not in _DTYPES:
        raise Refused(f"{_join(path, 'config.dtype')}: unknown dtype")
    if not (
        isinstance(history, list)
        and len(history) == 3
        and isinstance(history[0], str)
        and all(type(i) is int for i in history[1:])
    ):
        raise Refused(f"{_join(path, 'config.keras_history')}: [layer name, node, tensor]")


def _value(value: Any, path: str, depth: int) -> None:
    """Plain JSON, or an allow-listed nested object (initializer, regularizer, dtype policy)."""
    if depth > MAX_DEPTH:
        raise Refused(f"{path}: nested too deeply")
    if isinstance(value, dict):
        for key in value:
            bad = not isinstance(key, str) or key.startswith("__") or key in _CODE_KEYS
            if bad or not _SAFE_KEY.match(key):
                raise Refused(f"{_join(path, str(key))}: not allowed in a model document")
        if "class_name" in value:
            return _object(value, path, depth, kinds=NESTED)
        if "module" in value or "registered_name" in value:
            raise Refused(f"{path}: module and registered_name only go with a class_name")
        for key, item in value.items():
            _value(item, _join(path, key), depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _value(item, _join(path, i), depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise Refused(f"{path}: must be a finite number")
    elif not isinstance(value, str | int | float | bool | type(None)):
        raise Refused(f"{path}: unsupported value")


def input_layers(document: dict[str, Any]) -> dict[str, tuple[int, list[Any]]]:
    """Each InputLayer's name, its index in config.layers and its batch_shape."""
    found: dict[str, tuple[int, list[Any]]] = {}
    for i, layer in enumerate(document["config"]["layers"]):
        if layer.get("class_name") == "InputLayer":
            config = layer.get("config", {})
            found[str(config.get("name", layer.get("name", i)))] = (i, config.get("batch_shape"))
    return found
