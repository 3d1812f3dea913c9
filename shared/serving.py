"""Serving a trained model: loaded once per process, called directly, results as the quickstart."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import InvalidInput
from shared.keras_build import preprocess


class ModelCache:
    """Loaded models by file and checksum, least recently used evicted first."""

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self._models: OrderedDict[tuple[str, str], tuple[Any, threading.Lock]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, sha256: str) -> tuple[Any, threading.Lock]:
        """The model stored at path (loaded on first use) and a lock to call it under."""
        key = (str(path), sha256)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        import keras

        entry = (keras.models.load_model(path), threading.Lock())
        with self._lock:
            self._models[key] = entry
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
        return entry


def _ends_in_softmax(model: Any) -> bool:
    activation = getattr(model.layers[-1], "activation", None)
    return getattr(activation, "__name__", "") == "softmax"


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, as tf.nn.softmax computes it (shifted by the max, float32)."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


def predict(model: Any, lock: threading.Lock, instances: Any, scale: float) -> list[dict[str, Any]]:
    """Per instance: logits, softmax probabilities and the predicted class."""

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
    with lock:
        outputs = model(x, training=False)
    if _ends_in_softmax(model):
        probabilities = np.asarray(outputs, dtype=np.float32)
        logits = np.log(np.clip(probabilities, 1e-30, None))
    else:
        logits = np.asarray(outputs, dtype=np.float32)
        probabilities = softmax(logits)
    classes = np.argmax(logits, axis=-1)
    return [
        {"logits": lg.tolist(), "probabilities": pr.tolist(), "class": int(c)}
        for lg, pr, c in zip(logits, probabilities, classes, strict=True)
    ]
