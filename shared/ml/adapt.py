"""A model's Normalization layers left to adapt(): adapted on the job's training data before fit.

A user who puts ``keras.layers.Normalization()`` (no mean, no variance) in a model calls
``layer.adapt(data)`` before ``fit``; the worker does it for them, on the layer's own input: the
training rows passed through the layers before it (a sub-model from the model's inputs to the
layer's input, with ``training=False``), batch by batch. EfficientNet B0-B7 built without weights
have one, after a Rescaling. The spec check (``shared.spec.model_json.adapt_refusal``) lets such a
layer through only where that input can be computed so: a layer of the model itself, called once.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import keras


def unadapted(model: Any) -> list[Any]:
    """The model's own Normalization layers without a mean and variance, in the model's order."""
    return [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.Normalization) and layer.input_mean is None
    ]


def _layer_inputs(model: Any, layer: Any, batches: Iterable[Any]) -> Iterator[Any]:
    """The layer's input for each batch of the model's inputs."""
    rows = iter(batches)
    first = next(rows, None)
    if first is None:
        raise ValueError(f"Normalization {layer.name!r} left to adapt(): no training data")
    if not model.built:  # a Sequential document without an InputLayer: built as fit would
        model.build((None, *first.shape[1:]))
    to_layer = keras.Model(model.inputs, layer.input)
    for batch in itertools.chain([first], rows):
        yield to_layer.predict_on_batch(batch)


def adapt(model: Any, batches: Callable[[], Iterable[Any]]) -> list[str]:
    """Adapt each of the model's un-adapted Normalization layers on its input over ``batches()``
    (the training x, batch by batch; called once a layer); the names of those adapted.

    In the model's order, so that one fed by another sees it adapted."""
    done = []
    for layer in unadapted(model):
        layer.adapt(_layer_inputs(model, layer, batches()))
        done.append(str(layer.name))
    return done
