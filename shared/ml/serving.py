"""Serving a trained model: loaded once per process, called directly, every input and output by
name; a classifier head answers logits, probabilities and classes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import InvalidInput
from shared.ml.build import preprocess


@dataclass(frozen=True)
class Tensor:
    """One named input or output of a model: its shape for one instance (None: any size)."""

    name: str
    shape: tuple[int | None, ...]


@dataclass(frozen=True)
class Signature:
    """A model's inputs and outputs in its own order, and which outputs end in softmax."""

    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    softmax: tuple[bool, ...]

    def classifier(self, index: int) -> bool:
        """Whether output ``index`` is a classifier head: a score per class, two or more."""
        shape = self.outputs[index].shape
        return self.softmax[index] or (len(shape) == 1 and (shape[0] or 0) >= 2)


def _output_layers(model: Any) -> list[Any]:
    histories = [getattr(t, "_keras_history", None) for t in model.outputs]
    if all(h is not None for h in histories):
        return [getattr(h, "operation", None) for h in histories]
    return [model.layers[-1]] * len(model.outputs)  # a Sequential model's one output


def signature_of(model: Any) -> Signature:
    """The names and per-instance shapes of a Keras model's inputs and outputs."""
    layers = _output_layers(model)
    names = list(getattr(model, "output_names", None) or [layer.name for layer in layers])
    softmax = tuple(
        getattr(getattr(layer, "activation", None), "__name__", "") == "softmax" for layer in layers
    )
    inputs = tuple(Tensor(str(t.name), tuple(t.shape[1:])) for t in model.inputs)
    outputs = tuple(
        Tensor(str(n), tuple(t.shape[1:])) for n, t in zip(names, model.outputs, strict=True)
    )
    return Signature(inputs, outputs, softmax)


@dataclass
class Served:
    """A loaded model, its signature, the lock to call it under and its compiled call."""

    model: Any
    size_bytes: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    _call: Any = None
    _signature: Signature | None = None

    @property
    def signature(self) -> Signature:
        """The model's inputs and outputs by name."""
        if self._signature is None:
            self._signature = signature_of(self.model)
        return self._signature

    def __call__(self, *xs: np.ndarray) -> list[np.ndarray]:
        """``model(xs, training=False)``, one array per output, as one traced graph: no
        per-call Python layer walk."""
        import tensorflow as tf

        with self.lock:
            if self._call is None:
                specs = [tf.TensorSpec([None, *t.shape[1:]], tf.float32) for t in self.model.inputs]
                one = len(specs) == 1
                traced = tf.function(
                    lambda *ts: self.model(ts[0] if one else list(ts), training=False)
                )
                self._call = traced.get_concrete_function(*specs)  # called without dispatch
            out = self._call(*(tf.constant(x, tf.float32) for x in xs))
        if isinstance(out, Mapping):
            out = [out[t.name] for t in self.signature.outputs]
        elif not isinstance(out, (list, tuple)):
            out = [out]
        return [np.asarray(o) for o in out]


class ModelCache:
    """Loaded models by file and checksum; least recently used evicted past a size budget."""

    def __init__(self, budget_bytes: int = 512 * 1024 * 1024) -> None:
        self.budget_bytes = budget_bytes
        self._models: OrderedDict[tuple[str, str], Served] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, sha256: str) -> Served:
        """The model stored at path, loaded on first use."""
        key = (str(path), sha256)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        import keras

        # Its file size stands for its memory: the weights are most of both.
        entry = Served(keras.models.load_model(path), path.stat().st_size)
        with self._lock:
            self._models[key] = entry
            while len(self._models) > 1 and self.size_bytes > self.budget_bytes:
                self._models.popitem(last=False)
        return entry

    @property
    def size_bytes(self) -> int:
        """What the cached models take, by their files' sizes."""
        return sum(m.size_bytes for m in self._models.values())


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, as tf.nn.softmax computes it (shifted by the max, float32)."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class Head:
    """One output for every instance (one row each): a classifier head's logits, softmax
    probabilities and classes, or any other output's values."""

    name: str
    values: np.ndarray
    logits: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    classes: np.ndarray | None = None


def _head(signature: Signature, index: int, out: np.ndarray) -> Head:
    name = signature.outputs[index].name
    if not signature.classifier(index):
        return Head(name, np.asarray(out, dtype=np.float32))
    if signature.softmax[index]:
        probabilities = np.asarray(out, dtype=np.float32)
        logits = np.log(np.clip(probabilities, 1e-30, None))
    else:
        logits = np.asarray(out, dtype=np.float32)
        probabilities = softmax(logits)
    return Head(name, out, logits, probabilities, np.argmax(logits, axis=-1))


def rows_to_inputs(signature: Signature, instances: Sequence[Any]) -> dict[str, list[Any]]:
    """Instances as rows (each an array, or with several inputs an object by input name) as one
    list per input."""
    names = [t.name for t in signature.inputs]
    if len(names) == 1 and not all(isinstance(row, Mapping) for row in instances):
        return {names[0]: list(instances)}
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for i, row in enumerate(instances):
        if not isinstance(row, Mapping) or set(row) != set(names):
            raise InvalidInput(
                f"instance {i} must be an object with the model's inputs {names}",
                details={"field": f"instances[{i}]", "inputs": names},
            )
        for name in names:
            columns[name].append(row[name])
    return columns


def _array(name: str, value: Any, scale: float, expected: tuple[int | None, ...]) -> np.ndarray:
    try:
        x = np.asarray(preprocess(np.asarray(value), scale), dtype=np.float32)
    except (ValueError, TypeError, OverflowError) as exc:  # 10**400: too large for a float
        raise InvalidInput(
            f"input {name!r}: a list of numeric arrays of one shape is needed: {exc}",
            details={"field": name},
        ) from exc
    got = tuple(x.shape[1:]) if x.ndim else ()
    fits = x.ndim == len(expected) + 1 and all(
        e is None or e == g for e, g in zip(expected, got, strict=False)
    )
    if not fits:
        want = [e if e is not None else -1 for e in expected]
        raise InvalidInput(
            f"input {name!r}: each instance must have shape {want}; got {list(got)}",
            details={"field": name, "expected_shape": want, "shape": list(got)},
        )
    if not np.all(np.isfinite(x)):
        raise InvalidInput(
            f"input {name!r} contains NaN or infinite values", details={"field": name}
        )
    return x


def predict(served: Served, inputs: Mapping[str, Any], scale: float) -> list[Head]:
    """Every output of the model for a batch of instances given per input name (raw, as in the
    dataset: the job's scale is applied)."""
    signature = served.signature
    names = [t.name for t in signature.inputs]
    if set(inputs) != set(names):
        raise InvalidInput(
            f"the model's inputs are {names}; got {sorted(inputs)}",
            details={"field": "inputs", "inputs": names},
        )
    xs = [_array(t.name, inputs[t.name], scale, t.shape) for t in signature.inputs]
    if len({len(x) for x in xs}) != 1:
        raise InvalidInput(
            "every input must have as many instances as the others",
            details={
                "field": "inputs",
                "counts": {n: len(x) for n, x in zip(names, xs, strict=True)},
            },
        )
    if len(xs[0]) == 0:
        raise InvalidInput("send at least one instance", details={"field": "inputs"})
    return [_head(signature, i, out) for i, out in enumerate(served(*xs))]
