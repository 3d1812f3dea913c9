"""A compiled Keras model and its fit callbacks as the parts of a job spec: the model through
``model.to_json()``, the compile state from ``model.get_compile_config()``, each allow-listed
callback from its own attributes. Reads Keras objects, never imports Keras."""

from __future__ import annotations

import inspect
import json
from typing import Any

from trainq.errors import CannotSend

# The service's allow-listed callbacks that a Keras object can be turned into; the service's
# LearningRateScheduler takes a declarative schedule, never a Python function.
CALLBACKS = ("EarlyStopping", "ReduceLROnPlateau", "TerminateOnNaN")
# What the service chooses itself (the training is the same): not sent.
_SERVICE_CHOOSES = ("steps_per_execution", "jit_compile")


def _object(value: Any, what: str, keep_name: bool = True) -> Any:
    """Keras's serialised form turned into the spec's: objects as {class_name, config}, one of
    Keras's own functions by its name; anything of the caller's own code refused."""
    if isinstance(value, dict) and "class_name" in value:
        name, module = value["class_name"], str(value.get("module") or "keras")
        if not module.startswith("keras") or value.get("registered_name") not in (None, name):
            label = value.get("config") if name == "function" else name
            raise CannotSend(
                f"the {what} {label!r} is code of your own ({module}), which cannot be sent to "
                "the service; use one of Keras's own"
            )
        if name == "function":  # keras.losses.mean_squared_error and the like
            return value["config"]
        config = value.get("config") or {}
        return {
            "class_name": name,
            "config": {k: _object(v, what) for k, v in config.items() if keep_name or k != "name"},
        }
    if isinstance(value, dict):
        return {k: _object(v, what, keep_name) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_object(v, what, keep_name) for v in value]
    return value


def compile_spec(model: Any) -> dict[str, Any]:
    """The model's compile state: optimizer with its config, loss(es), loss weights, metrics."""
    compiled = model.get_compile_config() if getattr(model, "compiled", False) else None
    if not compiled:
        raise CannotSend("compile the model first: remote_fit sends its optimizer, loss, metrics")
    spec: dict[str, Any] = {
        # an optimizer's and a loss's name is only a label; a metric's names its history key
        "optimizer": _object(compiled["optimizer"], "optimizer", keep_name=False),
        "loss": _object(compiled["loss"], "loss", keep_name=False),
        "metrics": _object(compiled.get("metrics") or [], "metric"),
    }
    if spec["loss"] is None:
        raise CannotSend("the model was compiled without a loss; the service trains on one")
    for key in ("loss_weights", "weighted_metrics"):
        if compiled.get(key) is not None:
            spec[key] = _object(compiled[key], key.replace("_", " "))
    for key, default in (("run_eagerly", False), ("auto_scale_loss", True)):
        if compiled.get(key, default) != default:
            spec[key] = compiled[key]
    return spec


def _callback(callback: Any) -> dict[str, Any]:
    kind = type(callback)
    name = kind.__name__
    if not kind.__module__.startswith("keras") or name not in CALLBACKS:
        hint = (
            " (its schedule is a Python function: give the optimizer a learning_rate schedule, "
            "keras.optimizers.schedules.*, instead)"
            if name == "LearningRateScheduler"
            else ""
        )
        raise CannotSend(
            f"the callback {name} cannot be sent to the service{hint}; it runs "
            f"keras.callbacks {', '.join(CALLBACKS)}"
        )
    config: dict[str, Any] = {}
    for param in inspect.signature(kind.__init__).parameters.values():
        if param.kind is param.VAR_KEYWORD or param.name == "self":
            continue
        value = getattr(callback, param.name, param.default)
        if param.name == "min_delta":  # Keras turns its sign to the monitor's direction
            value = abs(value)
        if value != param.default:
            config[param.name] = value
    return {"class_name": name, "config": config}


def callbacks_spec(callbacks: Any) -> list[dict[str, Any]]:
    """The fit callbacks in the spec's form; one the service cannot run is refused."""
    return [_callback(c) for c in callbacks or []]


def input_names(model: Any) -> list[str]:
    """The model's inputs, as an upload names its x arrays (``x_train.<name>``)."""
    return [t.name.split(":")[0] for t in model.inputs]


def output_names(model: Any) -> list[str]:
    """The model's outputs, as an upload names its y arrays and compile names its losses."""
    return [t._keras_history[0].name for t in model.outputs]


def build(model: Any, input_shape: tuple[int, ...]) -> None:
    """Build a Sequential model that has no Input yet for the data's samples, as fit would."""
    model.build((None, *input_shape))


def model_document(model: Any) -> dict[str, Any]:
    """The model as its ``to_json()`` document, without the compile state (the spec has it)."""
    if not model.built:
        raise CannotSend("build the model first (or give it a keras.Input): it has no inputs")
    document: dict[str, Any] = json.loads(model.to_json())
    document.pop("compile_config", None)
    return document
