"""Checks a whole ``model.to_json()`` document against the allow-lists, before Keras sees it.

Keras writes ``module`` and ``registered_name`` keys into every object. A document is accepted only
when every object is one of Keras's own allow-listed classes, in the module Keras itself writes
for it, with no registered name other than Keras's own: so the deserializer it is later handed to
(in safe mode) can only look up Keras's built-in classes. Keras's operation layers (an op applied
to a tensor: ``keras.ops.add``, ``x * 2``, ``x[:, 1:]``) are classes of ``keras.src.ops`` modules,
checked against their own allow-list; the values Keras writes into their calls (slices, the
ellipsis, constant arrays) are plain data. Preprocessing layers whose state ``adapt()`` computes
carry it in their config, but a ``Normalization`` of the model itself, which the worker adapts on
the training data (``shared.ml.adapt``). Nothing here imports Keras.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from shared.spec.allowlists import (
    ACTIVATIONS,
    ADAPTED_STATE,
    DOCUMENT_LAYERS,
    FORBIDDEN_KEYS,
    LAYER_KEYS,
    LAYERS,
    MODELS,
    MODULES,
    NESTED,
)

MAX_DEPTH = 24
# A guard against pathological documents only, not a size limit: the largest keras.applications
# model (NASNetLarge) has 1,041 layers, EfficientNetV2L 1,031. Nested models' layers count too.
MAX_LAYERS = 5000
_DTYPES = frozenset({"float16", "bfloat16", "float32", "float64", "int8", "int16", "int32",
                     "int64", "uint8", "uint16", "bool", "string", None})  # fmt: skip
# The keys Keras writes around an object's config.
_OBJECT_KEYS = frozenset({"module", "class_name", "config", "registered_name",
                          "build_config", "compile_config", "name", "inbound_nodes",
                          "shared_object_id"})  # fmt: skip
_NUMERIC_DTYPES = _DTYPES - {"string", None}
_SAFE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Names Keras finds without a module: its layers, its models and the nested objects.
_WITHOUT_MODULE = LAYERS | MODELS | NESTED
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
    config = document.get("config")
    layers = config.get("layers") if isinstance(config, dict) else None
    if not isinstance(layers, list) or not layers:
        raise Refused("config.layers: a model document lists its layers")
    if _count_layers(document) > MAX_LAYERS:
        raise Refused(f"config.layers: at most {MAX_LAYERS} layers, nested models' included")
    _object(document, "", 0, kinds=MODELS)
    return document


def _count_layers(model: dict[str, Any], depth: int = 0) -> int:
    """The layers of a model document, those of its nested models included."""
    config = model.get("config")
    layers = config.get("layers") if isinstance(config, dict) else None
    if not isinstance(layers, list) or depth > MAX_DEPTH:
        return 0
    return len(layers) + sum(
        _count_layers(layer, depth + 1)
        for layer in layers
        if isinstance(layer, dict) and layer.get("class_name") in MODELS
    )


def adapt_refusal(
    class_name: str, config: dict[str, Any], adaptable: bool = False
) -> tuple[str, str] | None:
    """(config key, message) when a preprocessing layer would need adapt(): its state is not in
    its config. A Normalization without mean and variance is the exception where ``adaptable``
    (a layer of the model itself, called once): the worker adapts it on the training data."""
    keys = ADAPTED_STATE.get(class_name)
    if keys is None:
        return None
    missing = [k for k in keys if config.get(k) is None]
    if class_name == "Normalization" and missing:
        if len(missing) == 1:
            return missing[0], (
                "Normalization takes its mean and variance together, or neither (it is then "
                "adapted on the job's training data)"
            )
        if adaptable:
            return None
        return missing[0], (
            "Normalization without its mean and variance is adapted on the training data only "
            "as a layer of the model itself, called once: inside a nested model or a wrapper, or "
            "shared, its input is not computed from the model's inputs; give its state "
            "(adapt() on your data), e.g. Normalization(mean=..., variance=...)"
        )
    if missing:
        return missing[0], (
            f"{class_name} needs its {' and '.join(keys)} in its config: its state would come "
            f"from adapt(), which this service calls only for Normalization, and a model "
            f"document carries no weights; compute it (adapt() on your data) and pass it to the "
            f"constructor, e.g. {class_name}({', '.join(f'{k}=...' for k in keys)})"
        )
    for key in ("vocabulary", "bin_boundaries"):
        if key in keys and not isinstance(config[key], list):
            return key, f"{class_name}'s {key} is a list of values (a file is never read)"
    tf_idf = class_name == "IntegerLookup" and config.get("output_mode") == "tf_idf"
    if tf_idf and not isinstance(config.get("idf_weights"), list):
        return "idf_weights", "IntegerLookup with output_mode tf_idf needs its idf_weights"
    return None


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _object(
    value: dict[str, Any], path: str, depth: int, kinds: frozenset[str], own: bool = False
) -> None:
    """An object of the document; ``own``: a layer of the document's model itself (not nested)."""
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
    found_in = _WITHOUT_MODULE if module is None else MODULES[module]
    if name not in kinds or name not in found_in:
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
    nodes = value.get("inbound_nodes")
    called_once = not isinstance(nodes, list) or len(nodes) <= 1
    refusal = adapt_refusal(name, config, adaptable=own and called_once)
    if refusal is not None:
        raise Refused(f"{_join(path, 'config.' + refusal[0])}: {refusal[1]}")
    for key, item in config.items():
        item_path = _join(_join(path, "config"), key)
        if key in _CODE_KEYS or key.startswith("__") or not _SAFE_KEY.match(key):
            raise Refused(f"{item_path}: not allowed in a model document")
        if key == "layers" and name in MODELS:
            if not isinstance(item, list):
                raise Refused(f"{item_path}: must be a list")
            for i, layer in enumerate(item):
                _layer(layer, _join(item_path, i), depth + 1, own=depth == 0)
        elif key in LAYER_KEYS and name in LAYERS:
            if item is not None:
                _layer(item, item_path, depth + 1, kinds=LAYERS)
        else:
            _value(item, item_path, depth + 1)
    for key in ("build_config", "name", "shared_object_id"):
        if key in value:
            _value(value[key], _join(path, key), depth + 1)
    if "inbound_nodes" in value:
        _value(value["inbound_nodes"], _join(path, "inbound_nodes"), depth + 1, call=True)


def _layer(
    value: Any, path: str, depth: int, kinds: frozenset[str] = DOCUMENT_LAYERS, own: bool = False
) -> None:
    """A layer of a model (an allow-listed layer, op or nested model), or a wrapper's layer."""
    if not isinstance(value, dict) or "class_name" not in value:
        raise Refused(f"{path}: a layer is an object with class_name and config")
    if depth > MAX_DEPTH:
        raise Refused(f"{path}: nested too deeply")
    _object(value, path, depth, kinds=kinds, own=own)


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


def _call_value(value: dict[str, Any], path: str, depth: int) -> bool:
    """The plain values Keras writes into a layer's call (its inbound_nodes): a slice, the
    ellipsis, a constant array. True when ``value`` was one of them (and is sound)."""
    name, config = value.get("class_name"), value.get("config")
    if name not in ("__slice__", "__ellipsis__", "__numpy__", "__tensor__"):
        return False
    if set(value) != {"class_name", "config"} or not isinstance(config, dict):
        raise Refused(f"{path}: {name} holds only its config")
    config_path = _join(path, "config")
    if name == "__ellipsis__":
        if config:
            raise Refused(f"{config_path}: the ellipsis has no config")
    elif name == "__slice__":
        if set(config) != {"start", "stop", "step"}:
            raise Refused(f"{config_path}: a slice is its start, stop and step")
        for key, item in config.items():
            if item is not None and type(item) is not int:
                if not (isinstance(item, dict) and item.get("class_name") == "__keras_tensor__"):
                    raise Refused(f"{_join(config_path, key)}: an integer, a tensor or null")
                _tensor(item, _join(config_path, key))
    else:
        if set(config) != {"value", "dtype"} or config["dtype"] not in _NUMERIC_DTYPES:
            raise Refused(f"{config_path}: a constant is its value and a numeric dtype")
        _numbers(config["value"], _join(config_path, "value"), depth + 1)
    return True


def _numbers(value: Any, path: str, depth: int) -> None:
    """A number, or nested lists of numbers (a constant array's value)."""
    if depth > MAX_DEPTH:
        raise Refused(f"{path}: nested too deeply")
    if isinstance(value, list):
        for i, item in enumerate(value):
            _numbers(item, _join(path, i), depth + 1)
    elif not isinstance(value, int | float) or (
        isinstance(value, float) and not math.isfinite(value)
    ):
        raise Refused(f"{path}: a constant holds finite numbers only")


def _value(value: Any, path: str, depth: int, call: bool = False) -> None:
    """Plain JSON, or an allow-listed nested object (initializer, regularizer, dtype policy);
    in a layer's call (``call``), also the values Keras writes there (slices, constants)."""
    if depth > MAX_DEPTH:
        raise Refused(f"{path}: nested too deeply")
    if isinstance(value, dict):
        for key in value:
            bad = not isinstance(key, str) or key.startswith("__") or key in _CODE_KEYS
            if bad or not _SAFE_KEY.match(key):
                raise Refused(f"{_join(path, str(key))}: not allowed in a model document")
        if "class_name" in value:
            if call and _call_value(value, path, depth):
                return None
            return _object(value, path, depth, kinds=NESTED)
        if "module" in value or "registered_name" in value:
            raise Refused(f"{path}: module and registered_name only go with a class_name")
        for key, item in value.items():
            _value(item, _join(path, key), depth + 1, call)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _value(item, _join(path, i), depth + 1, call)
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
