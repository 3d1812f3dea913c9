"""A model's cost worked out before it is built: parameters, the memory of its weights and
optimizer state, and its activations per batch; refused over the server's budgets.

The layers are made from their configs and called on symbolic tensors (``keras.KerasTensor``)
inside Keras's ``StatelessScope`` with ``initialize_variables=False``: each layer's ``build``
declares its variables with their shapes, but none is given a value, so a Dense layer of a
million units costs a few kilobytes here, and its weights are counted from the declared shapes.
Output shapes come from the layers' ``compute_output_shape`` (or a symbolic trace of ``call``).
Nothing of it is kept: the deferred variables are forgotten before anything is built for real.

A layers list, and a Sequential document, are walked one layer at a time; a Functional document
one layer at a time too, each called on the tensors its ``inbound_nodes`` declare, so the first
layer over a budget is named without making the rest. Where the walk cannot follow (a layer
Keras refuses, an unusual call), it stops: the build that follows reports Keras's own message,
and the check process's memory and time limits bound whatever a document's declared shapes hide.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from shared.spec.fit import ObjectSpec
from shared.spec.job import JobSpec

MB = 1024 * 1024
_BYTES = {"float16": 2, "bfloat16": 2, "float64": 8, "int64": 8, "int8": 1, "uint8": 1,
          "int16": 2, "uint16": 2, "bool": 1}  # fmt: skip


@dataclass(frozen=True)
class Budgets:
    """The server's budgets for one model (from the settings)."""

    max_params: int
    max_model_mb: int
    max_activation_mb: int


class OverBudget(Exception):
    """A layer takes the model over a budget; ``field`` is the spec path of the layer."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def optimizer_slots(optimizer: str | ObjectSpec) -> int:
    """Variables the optimizer keeps per weight (Adam's two moments, momentum, ...)."""
    name = optimizer if isinstance(optimizer, str) else optimizer.class_name
    config = {} if isinstance(optimizer, str) else optimizer.config
    name = name.lower()

    def positive(key: str) -> bool:
        value = config.get(key)
        return isinstance(value, int | float) and value > 0

    slots = {"sgd": int(positive("momentum")), "rmsprop": 1, "adagrad": 1,
             "lion": 1, "adafactor": 1, "adam": 2, "adamw": 2, "adamax": 2, "nadam": 2,
             "adadelta": 2, "ftrl": 2}.get(name, 2)  # fmt: skip
    if name == "rmsprop":
        slots += int(bool(config.get("centered"))) + int(positive("momentum"))
    if name in ("adam", "adamw") and config.get("amsgrad"):
        slots += 1
    return slots + int(bool(config.get("use_ema")))


@dataclass
class _Tally:
    spec: JobSpec
    budgets: Budgets
    params: int = 0
    activations: int = 0  # bytes of every layer's output for one batch

    def __post_init__(self) -> None:
        self.seen: set[int] = set()
        self.slots = optimizer_slots(self.spec.compile.optimizer)
        self.batch = self.spec.fit.batch_size

    def add(self, field: str, layer: Any, output: Any) -> None:
        import keras

        label = f"layer {type(layer).__name__} {getattr(layer, 'name', '')!r}"
        for weight in getattr(layer, "weights", ()):  # an op (keras.ops.add) has none
            if id(weight) not in self.seen:
                self.seen.add(id(weight))
                self.params += math.prod(int(d) for d in weight.shape)
        b = self.budgets
        if self.params > b.max_params:
            raise OverBudget(
                field,
                f"{label} brings the model to {self.params:,} parameters; this server allows "
                f"at most {b.max_params:,}",
            )
        # Weights, their gradients and the optimizer's variables, in float32.
        state = self.params * 4 * (2 + self.slots)
        if state > b.max_model_mb * MB:
            raise OverBudget(
                field,
                f"{label} brings the model's weights, gradients and optimizer state to "
                f"{state // MB:,} MB ({self.params:,} parameters); this server allows at most "
                f"{b.max_model_mb:,} MB",
            )
        per_sample = 0
        for tensor in keras.tree.flatten(output):
            shape = [int(d) if d is not None else 1 for d in tuple(tensor.shape)[1:]]
            per_sample += math.prod(shape) * _BYTES.get(str(tensor.dtype), 4)
        self.activations += per_sample * self.batch
        if self.activations > b.max_activation_mb * MB:
            raise OverBudget(
                field,
                f"{label} outputs {per_sample // 4:,} values a sample: with batch_size "
                f"{self.batch} the model's activations come to {self.activations // MB:,} MB a "
                f"batch; this server allows at most {b.max_activation_mb:,} MB",
            )


def check(spec: JobSpec, input_shapes: dict[str, tuple[int, ...]], budgets: Budgets) -> None:
    """Raise OverBudget naming the first layer over a budget; pass when none is (or when the
    walk cannot follow the model: the build then says what is wrong)."""
    from keras.src.backend.common import global_state
    from keras.src.backend.common.stateless_scope import StatelessScope

    tally = _Tally(spec, budgets)
    try:
        with StatelessScope(initialize_variables=False):
            if spec.model.layers is not None:
                _layers(spec, input_shapes, tally)
            elif spec.model.document is not None:
                _document(spec.model.document, tally)
    except OverBudget:
        raise
    except Exception:
        return
    finally:  # never initialised, never kept: the deferred variables are forgotten
        global_state.set_global_attribute("uninitialized_variables", [])


def _layers(spec: JobSpec, input_shapes: dict[str, tuple[int, ...]], tally: _Tally) -> None:
    import keras

    assert spec.model.layers is not None
    if len(input_shapes) != 1:
        return
    tensor = keras.KerasTensor((None, *next(iter(input_shapes.values()))))
    for i, layer in enumerate(spec.model.layers):
        if layer.class_name == "InputLayer":
            continue
        config = {k: v for k, v in layer.config.items()
                  if k not in ("input_shape", "batch_input_shape")}  # fmt: skip
        made = getattr(keras.layers, layer.class_name)(**config)
        tensor = made(tensor)
        tally.add(f"model.layers[{i}]", made, tensor)


def _tensors(value: Any) -> Any:
    """A node's declared arguments, with symbolic tensors for Keras's tensor records."""
    import keras

    if isinstance(value, list):
        return [_tensors(v) for v in value]
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            config = value["config"]
            return keras.KerasTensor(tuple(config["shape"]), dtype=config.get("dtype"))
        if value.get("class_name") == "__tuple__":
            return tuple(_tensors(v) for v in value["config"]["value"])
        return {k: _tensors(v) for k, v in value.items()}
    return value


def _document(document: dict[str, Any], tally: _Tally) -> None:
    import keras

    config = document["config"]
    sequential = document.get("class_name") == "Sequential"
    tensor: Any = None
    if sequential and isinstance(config.get("build_input_shape"), list):
        tensor = keras.KerasTensor(tuple(config["build_input_shape"]))
    for i, item in enumerate(config["layers"]):
        field = f"model.json.config.layers[{i}]"
        layer = keras.saving.deserialize_keras_object(copy.deepcopy(item), safe_mode=True)
        if isinstance(layer, keras.layers.InputLayer):
            tensor = layer.output
            continue
        if sequential:
            if tensor is None:
                return
            tensor = layer(tensor)
            tally.add(field, layer, tensor)
            continue
        for node in item.get("inbound_nodes") or []:
            args, kwargs = _tensors(node.get("args", [])), _tensors(node.get("kwargs", {}))
            tally.add(field, layer, layer(*args, **kwargs))
