"""Turn a validated job spec into Keras objects, only through the spec's allow-lists.

Layers, optimizers, schedules, losses and metrics are made by looking their class up on Keras's
own modules (``getattr(keras.layers, "Dense")``); a model.to_json() document, once
``shared.spec.model_json`` has proven every class and module in it allow-listed, goes through
Keras's deserializer in safe mode. A Keras error is reported with the spec field it came from.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np

from shared.spec.allowlists import LOSSES, OPTIMIZERS
from shared.spec.job import CompileSpec, JobSpec, ObjectSpec


class BuildError(Exception):
    """Keras refused part of a spec; ``field`` is the spec path it came from."""

    def __init__(self, field: str, exc: BaseException) -> None:
        self.field = field
        self.reason = keras_message(exc)
        super().__init__(f"{field}: {type(exc).__name__}: {self.reason}")


log = logging.getLogger(__name__)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def keras_message(exc: BaseException) -> str:
    """Keras's own message, without its terminal colours and its echo of the call arguments."""
    text = _ANSI.sub("", str(exc)).strip()
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    if len(paragraphs) > 1 and paragraphs[0].startswith("Exception encountered when calling"):
        return paragraphs[1]
    return (paragraphs[0] if paragraphs else "") or type(exc).__name__


def preprocess(x: Any, scale: float) -> Any:
    """The job's input preprocessing: float32, divided by the dataset's scale (every input)."""
    if isinstance(x, dict):
        return {k: preprocess(v, scale) for k, v in x.items()}
    out = np.asarray(x, dtype=np.float32)
    return out / np.float32(scale) if scale != 1.0 else out


def _key_in_message(config: dict[str, Any], message: str) -> str | None:
    """The config key a Keras message is about ("... Received: units=-3" -> "units")."""
    for pattern in (r"`?{}`?\s*=", r"`{}`", r"\b{}\b"):
        for key in config:
            if re.search(pattern.format(re.escape(str(key))), message):
                return str(key)
    return None


def _field(base: str, config: dict[str, Any], exc: BaseException) -> str:
    key = _key_in_message(config, str(exc))
    return f"{base}.config.{key}" if key else base


_IMAGE_PREPROCESSING = "keras.src.layers.preprocessing.image_preprocessing"


def _tuples_kept(value: Any) -> Any:
    """``value`` (a layer config, or a whole document) with the lists in the configs of Keras's
    image preprocessing layers made tuples again, as the layers' own get_config() had them.

    JSON has no tuples. Given a list (a value_range, a factor), those layers keep it as a tracked
    list, and a model holding one cannot be saved as .h5 (Keras cannot copy its config), which
    the end of every job does; given tuples, as the user's own model had them, it can.
    """
    import keras

    if isinstance(value, list):
        return [_tuples_kept(item) for item in value]
    if not isinstance(value, dict):
        return value
    value = {key: _tuples_kept(item) for key, item in value.items()}
    layer = getattr(keras.layers, str(value.get("class_name")), None)
    config = value.get("config")
    if (
        isinstance(config, dict)
        and value.get("module", "keras.layers") == "keras.layers"
        and isinstance(layer, type)
        and layer.__module__.startswith(_IMAGE_PREPROCESSING)
    ):
        value["config"] = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    return value


def build_model(spec: JobSpec, input_shapes: dict[str, tuple[int, ...]] | tuple[int, ...]) -> Any:
    """The spec's model; a layers list gets its input shape from the data (or input_shape)."""
    import keras

    if spec.model.document is not None:
        try:
            document = _tuples_kept(spec.model.document)  # a copy: Keras changes what it reads
            return keras.saving.deserialize_keras_object(document, safe_mode=True)
        except Exception as exc:
            raise BuildError("model.json", exc) from exc
    if isinstance(input_shapes, dict):
        if len(input_shapes) != 1:
            raise BuildError(
                "model.layers",
                ValueError(
                    f"the dataset has {len(input_shapes)} inputs ({', '.join(input_shapes)}); "
                    "a layers list is a one-input model: send a Functional model as json"
                ),
            )
        input_shape = next(iter(input_shapes.values()))
    else:
        input_shape = input_shapes
    assert spec.model.layers is not None
    made: list[tuple[int, Any]] = []  # (index in the spec, layer)
    for i, layer in enumerate(spec.model.layers):
        config = dict(layer.config)
        declared = config.pop("input_shape", None)
        batch_declared = config.pop("batch_input_shape", None)
        if layer.class_name == "InputLayer":  # a layers list may start with its input
            if i != 0:
                raise BuildError(
                    f"model.layers[{i}].class_name",
                    ValueError("InputLayer comes first or not at all"),
                )
            declared = config.get("shape")
            batch_declared = config.get("batch_shape")
        if i == 0 and (declared or batch_declared):
            input_shape = _declared_shape(layer.class_name, declared, batch_declared, input_shape)
        if layer.class_name == "InputLayer":
            continue
        config = _tuples_kept({"class_name": layer.class_name, "config": config})["config"]
        try:
            made.append((i, getattr(keras.layers, layer.class_name)(**config)))
        except Exception as exc:
            raise BuildError(_field(f"model.layers[{i}]", layer.config, exc), exc) from exc
    tensor = inputs = keras.Input(shape=input_shape)
    for i, built in made:
        try:
            tensor = built(tensor)
        except Exception as exc:
            raise BuildError(
                _field(f"model.layers[{i}]", spec.model.layers[i].config, exc), exc
            ) from exc
    return keras.Sequential([inputs, *(layer for _, layer in made)], name="trainq_model")


def _declared_shape(
    class_name: str, declared: Any, batch_declared: Any, data_shape: tuple[int, ...]
) -> tuple[int, ...]:
    """The first layer's declared input shape, if it is the dataset's."""
    wanted = tuple(declared or batch_declared[1:])
    if len(wanted) != len(data_shape) or any(
        w is not None and w != s for w, s in zip(wanted, data_shape, strict=False)
    ):
        if class_name == "InputLayer":
            key = "shape" if declared else "batch_shape"
        else:
            key = "input_shape" if declared else "batch_input_shape"
        raise BuildError(
            f"model.layers[0].config.{key}",
            ValueError(
                f"the model takes samples of shape {list(wanted)}; "
                f"the dataset's are {list(data_shape)}"
            ),
        )
    return wanted


def _make(module: Any, value: ObjectSpec, field: str) -> Any:
    try:
        config: dict[str, Any] = {}
        for key, item in value.config.items():
            config[key] = (
                _make(module.schedules, item, field) if isinstance(item, ObjectSpec) else item
            )
        return getattr(module, value.class_name)(**config)
    except BuildError:
        raise
    except Exception as exc:
        raise BuildError(field, exc) from exc


def make_schedule(value: ObjectSpec, field: str) -> Any:
    """A keras.optimizers.schedules object from its allow-listed class name and config."""
    import keras

    return _make(keras.optimizers.schedules, value, field)


def make_optimizer(value: str | ObjectSpec) -> Any:
    """A fresh optimizer: by name with Keras's defaults, or with a config (and schedule)."""
    import keras

    if isinstance(value, str):
        value = ObjectSpec(class_name=OPTIMIZERS[value])
    return _make(keras.optimizers, value, "compile.optimizer")


def _loss(value: str | ObjectSpec, field: str) -> Any:
    import keras

    if isinstance(value, str):
        value = ObjectSpec(class_name=LOSSES[value])
    return _make(keras.losses, value, field)


def _metric(value: Any, field: str) -> Any:
    import keras

    if isinstance(value, list):
        return [_metric(v, f"{field}[{i}]") for i, v in enumerate(value)]
    return value if isinstance(value, str) else _make(keras.metrics, value, field)


def _metrics(values: Any, field: str) -> Any:
    if values is None:
        return None
    if isinstance(values, dict):
        return {k: _metric(v, f"{field}.{k}") for k, v in values.items()}
    return [_metric(v, f"{field}[{i}]") for i, v in enumerate(values)]


def compile_kwargs(c: CompileSpec) -> dict[str, Any]:
    """Every Model.compile argument, as Keras objects."""
    if isinstance(c.loss, list):
        loss: Any = [_loss(v, f"compile.loss[{i}]") for i, v in enumerate(c.loss)]
    elif isinstance(c.loss, dict):
        loss = {k: _loss(v, f"compile.loss.{k}") for k, v in c.loss.items()}
    else:
        loss = _loss(c.loss, "compile.loss")
    return {
        "optimizer": make_optimizer(c.optimizer),
        "loss": loss,
        "loss_weights": c.loss_weights,
        "metrics": _metrics(c.metrics, "compile.metrics"),
        "weighted_metrics": _metrics(c.weighted_metrics, "compile.weighted_metrics"),
        "run_eagerly": c.run_eagerly,
        "steps_per_execution": c.steps_per_execution or 1,
        "jit_compile": c.jit_compile,
        "auto_scale_loss": c.auto_scale_loss,
    }


# Allow-listed callbacks that act on each batch: with several steps per execution they would
# see only every n-th batch, so the service leaves steps_per_execution at 1 for them.
EVERY_BATCH = frozenset({"TerminateOnNaN"})


def auto_steps_per_execution(spec: JobSpec, steps_per_epoch: int, choice: int) -> int:
    """The user's steps_per_execution, or the service's choice when it is unset.

    Running several training steps in one call of the compiled function changes nothing in the
    training (the same batches, in the same order, with the same updates); it only saves the
    Python round trip between steps, which dominates small models.
    """
    c = spec.compile
    if c.steps_per_execution is not None:
        return c.steps_per_execution
    if (
        choice <= 1
        or c.run_eagerly
        or any(cb.class_name in EVERY_BATCH for cb in spec.fit.callbacks)
    ):
        return 1
    # Never more steps in one call than an epoch, or a validation pass limited by
    # validation_steps, has: Keras would run past those limits.
    limit = min(steps_per_epoch, spec.fit.validation_steps or steps_per_epoch)
    return max(1, min(choice, limit))


def compile_model(model: Any, spec: JobSpec, steps_per_execution: int | None = None) -> None:
    """Compile with every compile argument of the spec (steps_per_execution may be chosen)."""
    kwargs = compile_kwargs(spec.compile)
    if steps_per_execution is not None:
        kwargs["steps_per_execution"] = steps_per_execution
    try:
        model.compile(**kwargs)
    except Exception as exc:
        raise BuildError("compile", exc) from exc


def build_state(model: Any, batch: tuple[Any, Any]) -> None:
    """Create the optimizer's, the loss's and the metrics' variables now, as Keras itself does
    under a distribution strategy, rather than while it traces the first training step.

    Variables made while a step is traced are initialised through ``tf.cond`` branches that
    TensorFlow registers with the process and never lets go of: about 20 functions and 5-9 MB
    a job in a worker process that trains job after job. Made here, from the shapes of
    ``batch`` (x, y: a row of the data; nothing is computed), they are plain variables; the
    training is the same.
    """
    build = getattr(model, "_symbolic_build", None)
    if build is None:  # a Keras without it: the first traced step makes them, as before
        return
    try:
        build(data_batch=batch)
    except Exception:  # what is left unbuilt is built by the first step, as before
        log.warning("variables left to the first training step", exc_info=True)
