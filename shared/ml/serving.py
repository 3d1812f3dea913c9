"""Serving a trained model: loaded once per process, called directly, results as the quickstart."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import InvalidInput
from shared.ml.build import preprocess


@dataclass
class Served:
    """A loaded model, the lock to call it under, and its compiled call (made on first use)."""

    model: Any
    size_bytes: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    _call: Any = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``model(x, training=False)``, as one traced graph: no per-call Python layer walk."""
        import tensorflow as tf

        with self.lock:
            if self._call is None:
                signature = tf.TensorSpec([None, *self.model.inputs[0].shape[1:]], tf.float32)
                traced = tf.function(lambda t: self.model(t, training=False))
                self._call = traced.get_concrete_function(signature)  # called without dispatch
            return np.asarray(self._call(tf.constant(x, tf.float32)))


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


def _ends_in_softmax(model: Any) -> bool:
    activation = getattr(model.layers[-1], "activation", None)
    return getattr(activation, "__name__", "") == "softmax"


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, as tf.nn.softmax computes it (shifted by the max, float32)."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class Predictions:
    """Per instance (one row each): logits, softmax probabilities and the predicted class."""

    logits: np.ndarray
    probabilities: np.ndarray
    classes: np.ndarray


def predict(served: Served, instances: Any, scale: float) -> Predictions:
    """Per instance: logits, softmax probabilities and the predicted class."""
    model = served.model
    try:
        x = preprocess(np.asarray(instances), scale)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"instances must be a list of numeric arrays of one shape: {exc}",
            details={"field": "instances"},
        ) from exc
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise InvalidInput(
            f"predict serves models with one input and one output; this one has "
            f"{len(model.inputs)} and {len(model.outputs)}: download it to call it",
            details={"field": "instances"},
        )
    expected = tuple(model.inputs[0].shape[1:])
    if x.ndim == 0 or tuple(x.shape[1:]) != expected:
        got = tuple(x.shape[1:]) if x.ndim else ()
        raise InvalidInput(
            f"each instance must have shape {list(expected)}; got {list(got)}",
            details={"field": "instances", "expected_shape": list(expected), "shape": list(got)},
        )
    if not np.all(np.isfinite(x)):
        raise InvalidInput(
            "instances contain NaN or infinite values", details={"field": "instances"}
        )
    outputs = served(x)
    if _ends_in_softmax(model):
        probabilities = np.asarray(outputs, dtype=np.float32)
        logits = np.log(np.clip(probabilities, 1e-30, None))
    else:
        logits = np.asarray(outputs, dtype=np.float32)
        probabilities = softmax(logits)
    return Predictions(logits, probabilities, np.argmax(logits, axis=-1))
