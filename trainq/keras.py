"""`remote_fit`: a compiled Keras model's `fit`, with `Model.fit`'s own arguments, run on a
trainq service instead of locally.

The quickstart changes one line: ``model.fit(x_train, y_train, epochs=5)`` becomes
``remote_fit(model, x_train, y_train, epochs=5)``. The arrays go up as a dataset once (found
again by their SHA-256), the model as its ``to_json()``, its compile state and the callbacks as
a job spec; the call returns a ``keras.callbacks.History`` of the job's epochs and leaves the
trained weights in ``model``. Keras and NumPy are imported only when it is called, so the light
client needs neither.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from trainq import keras_spec
from trainq.client import Client
from trainq.errors import CannotSend, JobFailed

_KEPT_MODEL = ("succeeded", "pruned")  # both keep the trained model


def _arrays(model: Any, x: Any, y: Any, sample_weight: Any = None) -> dict[str, Any]:
    """One training (or validation) set as an upload's arrays, checked; nothing is sent."""
    from trainq import arrays

    if y is None:
        raise CannotSend(
            "give x and y as arrays (a tf.data.Dataset, a generator or a PyDataset stays local)"
        )
    inputs = arrays.named(x, keras_spec.input_names(model) if model.built else [""], "x")
    outputs = arrays.named(y, keras_spec.output_names(model) if model.built else [""], "y")
    return arrays.split_arrays("train", inputs, outputs, sample_weight)


def _dataset(client: Client, named: dict[str, Any], name: str) -> str:
    """The id of a dataset holding these arrays: one uploaded before, else this upload."""
    from trainq import arrays

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "arrays.npz"
        sha256 = arrays.write(path, named)
        found = client.find_dataset(sha256)
        if found is None:
            found = client.upload_dataset(path, name=name)
        return str(found["id"])


def _fit_spec(fit: dict[str, Any], callbacks: Any, validation: bool) -> dict[str, Any]:
    """The spec's fit: what was given (Keras's defaults are the spec's), the callbacks."""
    spec = {k: v for k, v in fit.items() if v is not None}
    if not isinstance(spec.get("shuffle", True), bool):
        raise CannotSend(f"shuffle={spec['shuffle']!r}: the service shuffles or not (True/False)")
    if spec.get("class_weight") is not None:
        spec["class_weight"] = {int(k): float(v) for k, v in spec["class_weight"].items()}
    spec["callbacks"] = keras_spec.callbacks_spec(callbacks)
    if not validation and not spec.get("validation_split"):
        spec.pop("validation_steps", None)  # as Keras ignores it without validation data
    return spec


def _history(model: Any, job: dict[str, Any], params: dict[str, Any]) -> Any:
    """The job's recorded epochs as the History that `fit` would have returned."""
    import keras

    history = keras.callbacks.History()
    history.set_model(model)
    history.set_params(params)
    history.on_train_begin()
    for row in job["history"]:
        history.on_epoch_end(row["epoch"] - 1, dict(row["metrics"]))
    history.job = job  # the job's record: its id, status, test metrics...
    return history


def _wait(client: Client, job_id: str, verbose: Any) -> dict[str, Any]:
    """The job once it has ended (shown live unless verbose=0); Ctrl-C cancels it."""
    try:
        if verbose == 0:
            return client.wait(job_id)
        from trainq.progress import follow

        follow(client, job_id)
        return client.get(job_id)
    except KeyboardInterrupt:
        client.cancel(job_id)  # as an interrupted fit stops training
        raise


def remote_fit(
    model: Any, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1,
    verbose: Any = "auto", callbacks: list[Any] | None = None, validation_split: float = 0.0,
    validation_data: Any = None, shuffle: bool = True, class_weight: dict[Any, float] | None = None,
    sample_weight: Any = None, initial_epoch: int = 0, steps_per_epoch: int | None = None,
    validation_steps: int | None = None, validation_batch_size: int | None = None,
    validation_freq: int = 1, *, seed: int | None = None, name: str | None = None,
    dataset: str | None = None, scale: float = 1.0, client: Client | None = None,
) -> Any:  # fmt: skip
    """Train ``model`` on the service as ``model.fit`` would; returns its History.

    Takes NumPy arrays (a dict or a list of them for several inputs or outputs, keyed by the
    model's input and output names), or ``dataset=`` a built-in dataset by name instead of
    ``x`` and ``y``; ``scale`` divides the inputs of either on the service (a dataset's
    preprocessing, as ``x / 255.0`` does by hand). ``seed`` gives the job's
    ``keras.utils.set_random_seed``: the model trains from the initial weights that seed
    gives, not from the weights ``model`` holds now. Anything the service cannot run (a layer
    or callback off its allow-lists, arrays of different lengths or of Python objects,
    ``sample_weight`` with ``dataset=``) raises ``CannotSend`` (or the server's
    ``InvalidSpec``) before anything is uploaded; a job that fails raises ``JobFailed``. The
    trained weights are then put into ``model``.
    """
    client = client or Client()
    if dataset is not None and (x is not None or y is not None):
        raise CannotSend("give x and y, or dataset=, not both")
    if dataset is not None and sample_weight is not None:
        raise CannotSend("sample_weight goes with x and y: a built-in dataset= has none")
    train = None if dataset is not None else _arrays(model, x, y, sample_weight)
    if train is not None and not model.built:  # as fit builds it, for the data's samples
        keras_spec.build(model, tuple(train["x_train"].shape[1:]))
        train = _arrays(model, x, y, sample_weight)
    validation = None
    if validation_data is not None:
        if not isinstance(validation_data, tuple | list) or len(validation_data) not in (2, 3):
            raise CannotSend("validation_data is (x_val, y_val) or (x_val, y_val, sample_weight)")
        validation = _arrays(model, *validation_data)
    fit = {
        "epochs": epochs, "batch_size": batch_size, "validation_split": validation_split or None,
        "shuffle": shuffle, "class_weight": class_weight, "initial_epoch": initial_epoch or None,
        "steps_per_epoch": steps_per_epoch, "validation_steps": validation_steps,
        "validation_batch_size": validation_batch_size, "validation_freq": validation_freq,
    }  # fmt: skip
    spec: dict[str, Any] = {
        "model": {"json": keras_spec.model_document(model)},
        "compile": keras_spec.compile_spec(model),
        "fit": _fit_spec(fit, callbacks, validation is not None),
    }
    if seed is not None:
        spec["seed"] = seed
    if name:
        spec["name"] = name
    client.check(spec)  # the service's allow-lists and limits, before any array is sent
    label = name or f"remote_fit {model.name}"
    if train is None:
        spec["dataset"] = {"name": dataset, "scale": scale}
    else:
        spec["dataset"] = {"id": _dataset(client, train, label), "scale": scale}
        if sample_weight is not None:
            spec["fit"]["sample_weight"] = "sample_weight"
    if validation is not None:
        val: dict[str, Any] = {"dataset": {"id": _dataset(client, validation, f"{label} (val)")}}
        if "sample_weight" in validation:
            val["sample_weight"] = "sample_weight"
        spec["fit"]["validation_data"] = val
    job = _wait(client, client.submit(spec)["id"], verbose)
    if job["status"] not in _KEPT_MODEL:
        raise JobFailed(job)
    _load_weights(client, model, job["id"])
    return _history(model, job, {"verbose": verbose, "epochs": epochs})


def _load_weights(client: Client, model: Any, job_id: str) -> None:
    """Put the job's trained weights into the caller's model."""
    import keras

    with tempfile.TemporaryDirectory() as folder:
        path = client.download_model(job_id, Path(folder) / "model.keras")
        trained = keras.models.load_model(path, compile=False)
    model.set_weights(trained.get_weights())
