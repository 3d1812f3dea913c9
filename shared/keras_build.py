"""Turn a validated job spec into Keras objects, only through the spec's allow-lists."""

from __future__ import annotations

from typing import Any

import numpy as np

from shared.spec import LOSSES, OPTIMIZERS, JobSpec, ObjectSpec


def preprocess(x: np.ndarray, scale: float) -> np.ndarray:
    """The job's input preprocessing: float32, divided by the dataset's scale."""
    out = np.asarray(x, dtype=np.float32)
    return out / np.float32(scale) if scale != 1.0 else out


def _object(value: str | ObjectSpec, names: dict[str, str]) -> dict[str, Any]:
    # Always hand Keras a {class_name, config} dict whose class_name is on our list, so its
    # deserializer looks it up among Keras's own classes and never imports anything.
    if isinstance(value, str):
        return {"class_name": names[value], "config": {}}
    return {"class_name": value.class_name, "config": dict(value.config)}


def build_model(spec: JobSpec, input_shape: tuple[int, ...]) -> Any:
    """A Sequential model from the spec's layers; the input shape comes from the data."""
    import keras

    layers: list[Any] = []
    for i, layer in enumerate(spec.model.layers):
        config = dict(layer.config)
        declared = config.pop("input_shape", None)
        batch_declared = config.pop("batch_input_shape", None)
        if i == 0 and (declared or batch_declared):
            input_shape = tuple(declared or batch_declared[1:])
        layers.append(getattr(keras.layers, layer.class_name)(**config))
    model = keras.Sequential([keras.Input(shape=input_shape), *layers], name="trainq_model")
    return model


def compile_model(model: Any, spec: JobSpec) -> None:
    """Compile with the spec's optimizer, loss and metrics."""
    import keras

    c = spec.compile
    metrics: list[Any] = [
        m if isinstance(m, str) else keras.metrics.get(_object(m, {})) for m in c.metrics
    ]
    model.compile(
        optimizer=keras.optimizers.get(_object(c.optimizer, OPTIMIZERS)),
        loss=keras.losses.get(_object(c.loss, LOSSES)),
        metrics=metrics,
    )
