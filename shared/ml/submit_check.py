"""Checked at submit: the job's data exists and its model builds and compiles against it.

Before a job is accepted, its model is built against the dataset's shapes, compiled, and called
on two samples of zeros shaped like the data, its loss and metrics computed: a spec that cannot
train is refused with Keras's own message and the spec field it came from. Before anything is
built, the model's parameters, the memory of its weights and optimizer state and its activations
are worked out from its layers' configs and shapes (``shared.ml.budget``) and held to the
server's budgets. The budget and the build run in a check process of their own
(``shared.ml.check_pool``); Keras is imported here only there, and nothing built is kept.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from shared.datasets import builtin, uploads
from shared.datasets.builtin import Layout
from shared.errors import InvalidSpec, RateLimited
from shared.ml import budget, check_pool
from shared.ml.budget import Budgets
from shared.models import User
from shared.settings import Settings, get_settings
from shared.spec import model_json
from shared.spec.job import DatasetRef, JobSpec, ValidationData

_refuse = check_pool.refusal


def layout(session: Session, owner: User, ref: DatasetRef, field: str) -> Layout:
    """What the dataset a spec names holds; refused if it is unknown or not the owner's."""
    if ref.id is not None:
        return uploads.layout(uploads.for_job(session, owner, ref.id, f"{field}.id"))
    assert ref.name is not None
    return builtin.describe(ref.name).layout


def _zeros(shapes: dict[str, tuple[tuple[int, ...], str]], n: int = 2) -> Any:
    arrays = {k: np.zeros((n, *shape), dtype=dtype) for k, (shape, dtype) in shapes.items()}
    return arrays[""] if set(arrays) == {""} else arrays


def _check_data(session: Session, owner: User, spec: JobSpec, data: Layout) -> None:
    fit = spec.fit
    vd = fit.validation_data
    if vd == "test" and data.n_test is None:
        raise _refuse("fit.validation_data", f"dataset {spec.dataset.label} has no test split")
    if isinstance(vd, ValidationData) and vd.dataset is not None:
        other = layout(session, owner, vd.dataset, "fit.validation_data.dataset")
        if vd.split == "test" and other.n_test is None:
            raise _refuse("fit.validation_data.split", "that dataset has no test split")
        if {k: v[0] for k, v in other.x.items()} != {k: v[0] for k, v in data.x.items()}:
            raise _refuse("fit.validation_data.dataset", "its inputs differ from the training data")
        _check_validation_weights(vd, other)
    if isinstance(vd, ValidationData) and vd.x is not None:
        _check_inline(vd, data)
    if isinstance(fit.sample_weight, str) and fit.sample_weight not in data.weights:
        have = ", ".join(sorted(data.weights)) or "none"
        raise _refuse(
            "fit.sample_weight", f"the dataset has no array {fit.sample_weight!r} (it has: {have})"
        )
    if isinstance(fit.sample_weight, list) and len(fit.sample_weight) != data.n_train:
        raise _refuse(
            "fit.sample_weight",
            f"{len(fit.sample_weight)} weights for {data.n_train} training samples; "
            "give one weight per sample",
        )


def _check_validation_weights(vd: ValidationData, other: Layout) -> None:
    """Weights for another dataset's validation rows: one of its arrays, or one per row."""
    field = "fit.validation_data.sample_weight"
    if isinstance(vd.sample_weight, str) and vd.sample_weight not in other.weights:
        have = ", ".join(sorted(other.weights)) or "none"
        raise _refuse(field, f"that dataset has no array {vd.sample_weight!r} (it has: {have})")
    rows = other.n_test if vd.split == "test" else other.n_train
    if isinstance(vd.sample_weight, list) and len(vd.sample_weight) != rows:
        raise _refuse(field, f"{len(vd.sample_weight)} weights for {rows} validation samples")


def _named_arrays(value: Any, dtype: str) -> dict[str, np.ndarray]:
    items = value.items() if isinstance(value, dict) else [("", value)]
    return {k: np.asarray(v, dtype=dtype) for k, v in items}


def _check_inline(vd: ValidationData, data: Layout) -> None:
    try:
        x, y = _named_arrays(vd.x, "float32"), _named_arrays(vd.y, "float64")
    except (ValueError, TypeError) as exc:
        raise _refuse("fit.validation_data", f"arrays of numbers of one shape: {exc}") from exc
    for part, arrays, shapes in (("x", x, data.x), ("y", y, data.y)):
        if set(arrays) != set(shapes):
            raise _refuse(f"fit.validation_data.{part}", f"give the arrays {sorted(shapes)}")
        for name, array in arrays.items():
            if not np.all(np.isfinite(array)):
                raise _refuse(f"fit.validation_data.{part}", "NaN or infinite values")
            if array.ndim == 0 or tuple(array.shape[1:]) != tuple(shapes[name][0]):
                raise _refuse(
                    f"fit.validation_data.{part}",
                    f"each sample must have shape {list(shapes[name][0])}; "
                    f"got {list(array.shape[1:])}",
                )
    lengths: set[int] = {len(a) for a in (*x.values(), *y.values())}
    if vd.sample_weight is not None:
        lengths.add(len(vd.sample_weight))
    if len(lengths) > 1:
        raise _refuse("fit.validation_data", f"x, y and sample_weight lengths differ: {lengths}")


def _check_inputs(spec: JobSpec, model: Any, data: Layout) -> None:
    """A model.to_json() document's inputs must be the dataset's, by name and shape."""
    document = spec.model.document
    assert document is not None
    declared = model_json.input_layers(document)
    names = [t.name.split(":")[0] for t in model.inputs]
    keys = list(data.x)
    if keys == [""]:
        if len(model.inputs) != 1:
            raise _refuse(
                "model.json", f"the model has {len(model.inputs)} inputs; the dataset one"
            )
        pairs = [(names[0], model.inputs[0], data.x[""][0])]
    else:
        missing = sorted(
            set(model.input_names if hasattr(model, "input_names") else names) ^ set(keys)
        )
        if missing:
            raise _refuse(
                "model.json",
                f"the model's inputs {sorted(names)} and the dataset's x arrays {sorted(keys)} "
                "must have the same names",
            )
        pairs = [(n, t, data.x[n][0]) for n, t in zip(names, model.inputs, strict=True)]
    for name, tensor, shape in pairs:
        expected = tuple(tensor.shape[1:])
        if len(expected) != len(shape) or any(
            e is not None and e != s for e, s in zip(expected, shape, strict=False)
        ):
            index = declared.get(name, (None, None))[0]
            field = (
                f"model.json.config.layers[{index}].config.batch_shape"
                if index is not None
                else "model.json"
            )
            raise _refuse(
                field,
                f"the input {name!r} takes samples of shape {list(expected)}; "
                f"the dataset's are {list(shape)}",
            )


def _check_outputs(spec: JobSpec, model: Any) -> None:
    """Losses, loss weights and metrics given by output name must name the model's outputs."""
    names = [t._keras_history[0].name for t in model.outputs]
    c = spec.compile
    given = {"loss": c.loss, "loss_weights": c.loss_weights, "metrics": c.metrics,
             "weighted_metrics": c.weighted_metrics}  # fmt: skip
    for field, value in given.items():
        if isinstance(value, dict):
            for key in value:
                if key not in names:
                    raise _refuse(
                        f"compile.{field}.{key}",
                        f"the model has no output {key!r}; its outputs are {names}",
                    )


def _check_class_weight(spec: JobSpec, model: Any) -> None:
    weights = spec.fit.class_weight
    if not weights:
        return
    if len(model.outputs) != 1:
        raise _refuse("fit.class_weight", "class_weight is for single-output models (Keras)")
    units = model.outputs[0].shape[-1] if model.outputs[0].shape else 1
    classes = units if units and units > 1 else 2
    unknown = sorted(k for k in weights if not 0 <= k < classes)
    if unknown:
        raise _refuse(
            "fit.class_weight",
            f"class {unknown[0]} does not exist: the model has {classes} classes "
            f"(0 to {classes - 1})",
        )


def limits(spec: JobSpec, settings: Settings) -> None:
    """The server's limits on a spec's size, checked first: a refusal here spends no rate."""
    if spec.fit.epochs > settings.max_epochs:
        raise InvalidSpec(
            f"fit.epochs is {spec.fit.epochs}; this server allows at most {settings.max_epochs}",
            details={"field": "fit.epochs"},
        )
    gpus = spec.resources.gpus
    if gpus > settings.max_gpus_per_job:
        raise InvalidSpec(
            f"resources.gpus is {gpus}; no worker of this server will have a slot with that "
            f"many GPUs (the most a job may ask for: {settings.max_gpus_per_job})",
            details={"field": "resources.gpus"},
        )
    limit = spec.time_limit_seconds
    if limit is not None and limit > settings.max_job_seconds:
        raise InvalidSpec(
            f"time_limit_seconds is {limit}; this server allows at most {settings.max_job_seconds}",
            details={"field": "time_limit_seconds"},
        )


def check(session: Session, owner: User, spec: JobSpec, settings: Settings) -> None:
    """Refuse a job that cannot train, naming the spec field; accept only one that builds.

    The cheap checks come first (the limits, the dataset, its shapes); then the model's budget
    and its build, in a check process (``shared.ml.check_pool``) unless ``check_processes`` is
    0; an identical spec on the same data is checked once (``check_cache_size``).
    """
    limits(spec, settings)
    data = layout(session, owner, spec.dataset, "dataset")
    _check_data(session, owner, spec, data)
    uploads.in_store(settings, spec.dataset_ids())  # before the costly part of the check
    request = {"spec": spec.model_dump(mode="json"), "data": _layout_json(data),
               "budgets": asdict(_budgets(settings))}  # fmt: skip
    key = hashlib.sha256(
        json.dumps({**request, "spec": {**request["spec"], "name": None, "priority": None}},
                   sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()  # fmt: skip
    answer = _answers.answer(
        key, lambda: _ask(request, settings, owner.id), settings.check_cache_size
    )
    if "limit" in answer:
        raise check_pool.refusal("model", str(answer["message"]))
    if "error" in answer:
        raise InvalidSpec(answer["error"]["message"], details=answer["error"]["details"])


# Checks each user has running in this process: one user's burst never takes every check
# process from the others.
_checking: Counter[int] = Counter()
_checking_lock = threading.Lock()


def _ask(request: dict[str, Any], settings: Settings, user_id: int) -> dict[str, Any]:
    if settings.check_processes == 0:
        return _answer_here(request)
    most = settings.check_processes
    with _checking_lock:
        if _checking[user_id] >= most:
            raise RateLimited(
                f"{most} of your submissions are being checked already; submit this one once "
                "they are answered",
                retry_after=1,
                details={"limit": most},
            )
        _checking[user_id] += 1
    try:
        return check_pool.pool(
            settings.check_processes, settings.check_waiting, settings.check_memory_mb,
            settings.check_seconds,
        ).run(request)  # fmt: skip
    finally:
        with _checking_lock:
            _checking[user_id] -= 1
            if not _checking[user_id]:
                del _checking[user_id]


class _Answers:
    """The answers of recent checks, by the hash of what was checked (least recent out); a
    check asked for while the same one runs waits for its answer instead of running again."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.running: dict[str, Future[dict[str, Any]]] = {}

    def answer(self, key: str, ask: Callable[[], dict[str, Any]], size: int) -> dict[str, Any]:
        with self.lock:
            answer = self.items.get(key)
            if answer is not None:
                self.items.move_to_end(key)
                return answer
            running = self.running.get(key)
            if running is None:
                mine: Future[dict[str, Any]] = Future()
                self.running[key] = mine
        if running is not None:
            return running.result()
        try:
            got = ask()
        except BaseException as exc:
            mine.set_exception(exc)
            with self.lock:
                del self.running[key]
            raise
        mine.set_result(got)
        with self.lock:
            del self.running[key]
            # A slow check may be the machine's, not the spec's: that answer is not kept.
            if got.get("limit") != "time" and size:
                self.items[key] = got
                while len(self.items) > size:
                    self.items.popitem(last=False)
        return got


_answers = _Answers()


def _budgets(settings: Settings) -> Budgets:
    return Budgets(settings.max_model_params, settings.max_model_mb, settings.max_activation_mb)


def _layout_json(data: Layout) -> dict[str, Any]:
    return {"x": {k: [list(s), d] for k, (s, d) in data.x.items()},
            "y": {k: [list(s), d] for k, (s, d) in data.y.items()},
            "n_train": data.n_train, "n_test": data.n_test, "weights": data.weights}  # fmt: skip


def _layout_from(value: dict[str, Any]) -> Layout:
    return Layout(
        x={k: (tuple(s), d) for k, (s, d) in value["x"].items()},
        y={k: (tuple(s), d) for k, (s, d) in value["y"].items()},
        n_train=value["n_train"], n_test=value["n_test"], weights=dict(value["weights"]),
    )  # fmt: skip


def run_request(request: dict[str, Any]) -> None:
    """One check as a check process runs it: the budget first, then the build (InvalidSpec)."""
    spec = JobSpec.model_validate(request["spec"])
    data = _layout_from(request["data"])
    spec_budget = Budgets(**request["budgets"])
    try:
        budget.check(spec, {k: v[0] for k, v in data.x.items()}, spec_budget)
    except budget.OverBudget as exc:
        raise _refuse(exc.field, exc.reason) from exc
    model = _build(spec, data)
    # A document's declared shapes may hide what its layers make: the built model is counted
    # too (its memory was bounded by the check process's limit meanwhile).
    params = int(model.count_params())
    if params > spec_budget.max_params:
        raise _refuse(
            "model",
            f"the built model has {params:,} parameters; this server allows at most "
            f"{spec_budget.max_params:,}",
        )


def _answer_here(request: dict[str, Any]) -> dict[str, Any]:
    try:
        run_request(request)
    except InvalidSpec as exc:
        return {"error": {"message": exc.message, "details": exc.details}}
    return {"ok": True}


def _build(spec: JobSpec, data: Layout) -> Any:
    from shared.ml import train_callbacks
    from shared.ml.build import BuildError, build_model, compile_model

    shapes = {k: v[0] for k, v in data.x.items()}
    try:
        model = build_model(spec, shapes[""] if set(shapes) == {""} else shapes)
        if spec.model.document is not None:
            _check_inputs(spec, model, data)
        _check_class_weight(spec, model)
        _check_outputs(spec, model)
        compile_model(model, spec)
        train_callbacks.make(spec.fit.callbacks)
        x, y = _zeros(data.x), _zeros(data.y)
        if isinstance(x, dict):
            x = {k: v.astype("float32") for k, v in x.items()}
        else:
            x = x.astype("float32")
        try:
            y_pred = model(x, training=False)
        except Exception as exc:
            raise BuildError("model", exc) from exc
        try:
            model.compute_loss(x=x, y=y, y_pred=y_pred)
        except Exception as exc:
            field = "compile.loss_weights" if "loss_weights" in str(exc) else "compile.loss"
            raise BuildError(field, exc) from exc
        try:
            model.compute_metrics(x, y, y_pred)
        except Exception as exc:
            raise BuildError("compile.metrics", exc) from exc
    except BuildError as exc:
        raise _refuse(exc.field, exc.reason) from exc
    return model


def warm_up(in_process: bool = False, settings: Settings | None = None) -> None:
    """Check a small spec once, so that a process's first real check does not wait for what
    Keras and TensorFlow set up on first use (seconds): here, or in each check process the
    settings ask for (started now, and waited for)."""
    settings = settings or get_settings()
    if not in_process and settings.check_processes:
        check_pool.pool(
            settings.check_processes, settings.check_waiting, settings.check_memory_mb,
            settings.check_seconds,
        ).warm_up()  # fmt: skip
        return
    spec = JobSpec.model_validate({
        "dataset": {"name": "mnist-sample"},
        "model": {"layers": [{"class_name": "Flatten"}, {"class_name": "Dense",
                                                          "config": {"units": 10}}]},
        "compile": {"optimizer": "adam", "metrics": ["accuracy"], "loss": {
            "class_name": "SparseCategoricalCrossentropy", "config": {"from_logits": True}}},
    })  # fmt: skip
    data = builtin.describe(spec.dataset.label).layout
    budget.check(spec, {k: v[0] for k, v in data.x.items()}, _budgets(settings))
    _build(spec, data)
