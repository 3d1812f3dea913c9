"""`remote_fit`: run a compiled Keras model's `fit` on a trainq service instead of locally.

The quickstart changes one line: ``model.fit(x_train, y_train, epochs=5)`` becomes
``job = remote_fit(model, dataset="mnist", scale=255.0, epochs=5)``. Keras is imported only
when this module is used, so the light client does not need it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from trainq.client import Client

# Keys Keras writes into a layer's config that the service sets itself.
_DROPPED = ("name",)
_DEFAULT_DTYPE = "float32"


def _plain(value: Any) -> Any:
    """Keras's serialised form turned into the spec's: nested objects as {class_name, config}."""
    if isinstance(value, dict):
        if "class_name" in value:
            return {"class_name": value["class_name"], "config": _plain(value.get("config") or {})}
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _layer(layer: Any) -> dict[str, Any]:
    config = {k: v for k, v in layer.get_config().items() if k not in _DROPPED}
    dtype = config.get("dtype")
    if isinstance(dtype, dict) and dtype.get("config", {}).get("name") == _DEFAULT_DTYPE:
        del config["dtype"]
    if config.get("trainable") is True:
        del config["trainable"]
    return {"class_name": type(layer).__name__, "config": _plain(config)}


def layers_spec(model: Any) -> list[dict[str, Any]]:
    """A Sequential model's layers in the spec's form, the input shape on the first layer."""
    import keras

    if not isinstance(model, keras.Sequential):
        raise ValueError("remote_fit takes a keras.Sequential model")
    layers = [_layer(layer) for layer in model.layers]
    if not layers:
        raise ValueError("the model has no layers")
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):  # not built: the dataset gives the input shape
        shape = None
    if shape is not None:
        layers[0]["config"]["input_shape"] = list(shape[1:])
    return layers


def _compile_object(value: Any, what: str) -> Any:
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, dict) or "class_name" not in value:
        raise ValueError(f"the {what} {value!r} cannot be sent to the service")
    config = {}
    for key, item in (value.get("config") or {}).items():
        if isinstance(item, dict):
            raise ValueError(
                f"the {what}'s {key} ({item.get('class_name', item)}) is not supported"
            )
        if key != "name":
            config[key] = item
    return {"class_name": value["class_name"], "config": config}


def compile_spec(model: Any) -> dict[str, Any]:
    """The model's compile arguments (optimizer, loss, metrics) in the spec's form."""
    compiled = model.get_compile_config() if model.compiled else None
    if not compiled:
        raise ValueError("compile the model first: remote_fit sends its optimizer, loss, metrics")
    for key in ("loss_weights", "weighted_metrics"):
        if compiled.get(key):
            raise ValueError(f"compile({key}=...) is not supported by the service yet")
    metrics = compiled.get("metrics") or []
    return {
        "optimizer": _compile_object(compiled["optimizer"], "optimizer"),
        "loss": _compile_object(compiled["loss"], "loss"),
        "metrics": [_compile_object(m, "metric") for m in metrics],
    }


def job_spec(
    model: Any, *, dataset: str, scale: float = 1.0, epochs: int = 1, batch_size: int = 32,
    validation_split: float = 0.0, shuffle: bool = True, seed: int | None = None,
    name: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The job spec that trains this model as `fit` would, on a dataset the service has."""
    spec: dict[str, Any] = {
        "dataset": {"name": dataset, "scale": scale},
        "model": {"layers": layers_spec(model)},
        "compile": compile_spec(model),
        "fit": {"epochs": epochs, "batch_size": batch_size,
                "validation_split": validation_split, "shuffle": shuffle},
    }  # fmt: skip
    if seed is not None:
        spec["seed"] = seed
    if name:
        spec["name"] = name
    return spec


def remote_fit(
    model: Any, *, dataset: str, scale: float = 1.0, epochs: int = 1, batch_size: int = 32,
    validation_split: float = 0.0, shuffle: bool = True, seed: int | None = None,
    name: str | None = None, client: Client | None = None, wait: bool = True,
    verbose: int = 1, load_weights: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Train the model on the service; returns the job (finished, unless wait=False).

    With ``wait`` (the default) the call returns when the job has ended, showing the epochs
    live if ``verbose``; with ``load_weights`` the trained weights are then put into
    ``model``, so the rest of a local script (evaluate, predict, save) goes on unchanged.
    """
    client = client or Client()
    spec = job_spec(
        model, dataset=dataset, scale=scale, epochs=epochs, batch_size=batch_size,
        validation_split=validation_split, shuffle=shuffle, seed=seed, name=name,
    )  # fmt: skip
    job = client.submit(spec)
    if not wait:
        return job
    if verbose:
        from trainq.progress import follow

        follow(client, job["id"])
        job = client.get(job["id"])
    else:
        job = client.wait(job["id"])
    if job["status"] in ("succeeded", "pruned") and load_weights:  # both keep their model
        import keras

        with tempfile.TemporaryDirectory() as folder:
            path = client.download_model(job["id"], Path(folder) / "model.keras")
            trained = keras.models.load_model(path)
        model.set_weights(trained.get_weights())
    return job
