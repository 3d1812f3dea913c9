"""What the worker hands to Model.fit: the data, every fit argument, the spec's callbacks.

Imports Keras; the worker imports it, the web does not. ``workers``, ``use_multiprocessing`` and
``max_queue_size`` left Model.fit in Keras 3: when a spec gives any of them the arrays are served
through ``ArrayDataset``, a ``keras.utils.PyDataset`` that passes them on to Keras.

With ``use_multiprocessing`` Keras starts its data worker processes through Python's default
start method. Forked from a process that is running TensorFlow, such a worker can deadlock (and
with it the exit of the process that forked it), so the worker switches that method to a fork
server that has imported this module and run nothing: its forks are clean and start at once.
"""

from __future__ import annotations

import math
import multiprocessing
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from shared.datasets import builtin, mapped, uploads
from shared.ml import kept_data, train_callbacks
from shared.ml.build import preprocess
from shared.settings import Settings
from shared.spec.job import DatasetRef, JobSpec, ValidationData


def _take(data: Any, index: Any) -> Any:
    if data is None:
        return None
    if isinstance(data, dict):
        return {k: v[index] for k, v in data.items()}
    if isinstance(data, list):  # a list-output model's targets, in its order
        return [v[index] for v in data]
    return data[index]


def _arrays(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: np.asarray(v) for k, v in data.items()}
    if isinstance(data, list):
        return [np.asarray(v) for v in data]
    return np.asarray(data)


def _length(data: Any) -> int:
    if isinstance(data, dict):
        return len(next(iter(data.values())))
    return len(data[0]) if isinstance(data, list) else len(data)


def _in_order(y: Any, names: list[str]) -> Any:
    return [y[n] for n in names] if isinstance(y, dict) and set(y) == set(names) else y


class ArrayDataset(keras.utils.PyDataset):
    """Arrays served batch by batch, through Keras's PyDataset workers and queue; with a
    ``scale``, raw inputs read from disk (``mapped.Rows``) preprocessed one batch at a time."""

    def __init__(
        self, x: Any, y: Any, sample_weight: Any, batch_size: int, shuffle: bool,
        seed: int | None, *, scale: float | None = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(**kwargs)  # workers, use_multiprocessing, max_queue_size reach Keras
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.batch_size, self.shuffle, self.scale = batch_size, shuffle, scale
        self.n = _length(x)
        self._rng = np.random.default_rng(seed)
        self.order = self._rng.permutation(self.n) if shuffle else np.arange(self.n)
        self.threads: set[str] = set()  # which threads served batches (seen in tests)

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        self.threads.add(threading.current_thread().name)
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        batch: tuple[Any, ...] = (self.inputs(rows), _take(self.y, rows))
        if self.scale is not None:  # rows read from disk: plain arrays, as in memory
            batch = (batch[0], _arrays(batch[1]))
        if self.sample_weight is not None:
            weight = self.sample_weight[rows]
            batch = (*batch, weight if self.scale is None else weight.astype(np.float32))
        return batch

    def inputs(self, rows: Any) -> Any:
        """The x of some rows, as the model takes them."""
        x = _take(self.x, rows)
        return x if self.scale is None else preprocess(x, self.scale)

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.order = self._rng.permutation(self.n)


def clean_worker_processes() -> None:
    """Have Keras's data worker processes forked by a fork server, not by this process."""
    if multiprocessing.get_start_method(allow_none=True) != "forkserver":
        multiprocessing.set_forkserver_preload([__name__])  # ArrayDataset unpickles at once
        multiprocessing.set_start_method("forkserver", force=True)


@dataclass
class FitPlan:
    """Arguments for model.fit, and the test split to evaluate on afterwards."""

    x: Any
    y: Any
    kwargs: dict[str, Any]
    callbacks: list[Any]
    input_shapes: dict[str, tuple[int, ...]] | tuple[int, ...]
    test: tuple[Any, Any] | None = None
    dataset: ArrayDataset | None = field(default=None, repr=False)
    test_batch_size: int = 256
    validation_batch_size: int | None = None
    # The dataset as this process keeps it between jobs, and what the validation and test rows
    # are (None: rows of this job's own, batched by Keras as given).
    kept: kept_data.Kept | None = field(default=None, repr=False)
    held_out: dict[str, Any] = field(default_factory=dict, repr=False)
    output_order: tuple[str, ...] | None = None  # dict targets as a list in this order

    def first_row(self) -> tuple[Any, Any]:
        """The first training row (x, y), for the shapes and dtypes of the data."""
        if self.dataset is not None:
            return self.dataset.inputs(slice(0, 1)), _take(self.dataset.y, slice(0, 1))
        return _take(self.x, slice(0, 1)), _take(self.y, slice(0, 1))

    def training_x(self, spec: JobSpec, batch_size: int) -> Iterator[Any]:
        """The x of the rows the model trains on (without validation_split's last fraction, as
        Keras splits it), in batches: what a user would adapt() a layer on."""
        if self.dataset is not None:  # already split
            x, n = self.dataset.x, self.dataset.n
        else:
            x = self.x
            n = math.floor(_length(x) * (1.0 - self.kwargs.get("validation_split", 0.0)))
        for start in range(0, n, batch_size):
            rows = slice(start, min(start + batch_size, n))
            yield self.dataset.inputs(rows) if self.dataset is not None else _take(x, rows)

    def targets_as_outputs(self, model: Any) -> None:
        """Targets by output name as a list in the outputs' order when the model's outputs are
        a list: Keras matches a dict of targets to them only without sample weights."""
        if isinstance(model, keras.Sequential) or not isinstance(model.output, list | tuple):
            return  # one output (a Sequential's is not known until it is called)
        names = [t._keras_history[0].name for t in model.outputs]
        if isinstance(self.y, dict):
            self.output_order = tuple(names)
        self.y = _in_order(self.y, names)
        for held in (self.dataset, self.kwargs["validation_data"]):
            if isinstance(held, ArrayDataset):
                held.y = _in_order(held.y, names)
        validation = self.kwargs["validation_data"]
        if isinstance(validation, tuple):
            self.kwargs["validation_data"] = (validation[0], _in_order(validation[1], names),
                                              *validation[2:])  # fmt: skip
        if self.test is not None and not isinstance(self.test[0], ArrayDataset):
            self.test = (self.test[0], _in_order(self.test[1], names))
        elif self.test is not None:
            self.test[0].y = _in_order(self.test[0].y, names)

    def steps_per_epoch(self, spec: JobSpec) -> int:
        """Training steps in one epoch, as Keras will count them."""
        if spec.fit.steps_per_epoch:
            return spec.fit.steps_per_epoch
        if self.dataset is not None:
            return len(self.dataset)
        split = self.kwargs.get("validation_split", 0.0)
        n = _length(self.x) - math.floor(_length(self.x) * split)
        return max(1, math.ceil(n / spec.fit.batch_size))

    def batch_held_out(self) -> None:
        """The validation and test rows from the kept dataset as its kept batches (built on
        the first job that needs them); called once the targets are in the model's order."""
        if self.kept is None:
            return
        validation = self.kwargs.get("validation_data")
        what = self.held_out.get("validation")
        if what is not None and isinstance(validation, tuple):
            batch = self.validation_batch_size
            assert batch is not None
            key = (what, self.output_order)
            self.kwargs["validation_data"] = self.kept.held_out(key, validation, batch)
            self.kwargs["validation_batch_size"] = None
        if self.held_out.get("test") is not None and self.test is not None:
            key = (self.held_out["test"], self.output_order)
            self.test = (self.kept.held_out(key, self.test, self.test_batch_size), None)


def load(settings: Settings, ref: DatasetRef) -> builtin.Splits:
    """A dataset's arrays: a built-in one by name, an uploaded one by id."""
    return _source(settings, ref)[1]()


def _shapes(x: Any) -> dict[str, tuple[int, ...]] | tuple[int, ...]:
    if isinstance(x, dict):
        return {k: tuple(v.shape[1:]) for k, v in x.items()}
    return tuple(x.shape[1:])


def _validation(settings: Settings, spec: JobSpec, data: builtin.Splits, x_test: Any = None) -> Any:
    vd, scale = spec.fit.validation_data, spec.dataset.scale
    if vd is None:
        return None
    if vd == "test":
        return (preprocess(data.x_test, scale) if x_test is None else x_test, data.y_test)
    assert isinstance(vd, ValidationData)
    if vd.dataset is not None:
        other = load(settings, vd.dataset)
        x, y = (
            (other.x_test, other.y_test) if vd.split == "test" else (other.x_train, other.y_train)
        )
        val = (preprocess(x, scale), _arrays(y))  # the model sees one preprocessing: the job's
        if isinstance(vd.sample_weight, str):
            return (*val, other.weights[vd.sample_weight].astype(np.float32))
        if vd.sample_weight is not None:
            return (*val, np.asarray(vd.sample_weight, dtype=np.float32))
        return val
    x = preprocess(vd.x, scale)
    y = {k: np.asarray(v) for k, v in vd.y.items()} if isinstance(vd.y, dict) else np.asarray(vd.y)
    if vd.sample_weight is not None:
        return (x, y, np.asarray(vd.sample_weight, dtype=np.float32))
    return (x, y)


def _options(fit: Any) -> dict[str, Any]:
    options = {
        k: v
        for k, v in (
            ("workers", fit.workers),
            ("use_multiprocessing", fit.use_multiprocessing),
            ("max_queue_size", fit.max_queue_size),
        )
        if v is not None
    }
    if fit.use_multiprocessing:
        clean_worker_processes()
    return options


def _mapped(x: Any) -> bool:
    return any(isinstance(v, mapped.Rows) for v in (x.values() if isinstance(x, dict) else [x]))


def _streamed(settings: Settings, spec: JobSpec, data: builtin.Splits) -> FitPlan:
    """A dataset read from disk's plan: training, validation and test rows all served batch by
    batch, preprocessed as they go, never copied whole. Without shuffling, the same batches
    (and history) as the in-memory plan; shuffled, in an order of its own (from the seed)."""
    fit, scale = spec.fit, spec.dataset.scale
    x, y = data.x_train, data.y_train
    weight: Any = None
    if isinstance(fit.sample_weight, str):
        weight = data.weights[fit.sample_weight]
    elif fit.sample_weight is not None:
        weight = np.asarray(fit.sample_weight, dtype=np.float32)
    val_batch = fit.validation_batch_size or fit.batch_size
    validation: Any = None
    if fit.validation_split:  # as Keras does it: the last fraction, before any shuffling
        at = math.floor(_length(x) * (1.0 - fit.validation_split))
        head, tail = slice(0, at), slice(at, None)
        validation = ArrayDataset(_take(x, tail), _take(y, tail), _take(weight, tail),
                                  val_batch, False, None, scale=scale)  # fmt: skip
        x, y, weight = _take(x, head), _take(y, head), _take(weight, head)
    elif fit.validation_data == "test":
        validation = ArrayDataset(data.x_test, data.y_test, None, val_batch, False, None,
                                  scale=scale)  # fmt: skip
    else:
        validation = _validation(settings, spec, data)  # another dataset or inline: as before
    kwargs: dict[str, Any] = {
        "epochs": fit.epochs,
        "verbose": 2 if fit.verbose == "auto" else fit.verbose,
        "validation_data": validation,
        "class_weight": fit.class_weight,
        "initial_epoch": fit.initial_epoch,
        "steps_per_epoch": fit.steps_per_epoch,
        "validation_steps": fit.validation_steps,
        "validation_batch_size": None if isinstance(validation, ArrayDataset) else val_batch,
        "validation_freq": fit.validation_freq,
        "shuffle": False,  # the dataset shuffles its rows itself
    }
    test = None
    if data.x_test is not None and data.y_test is not None:
        test_rows = ArrayDataset(data.x_test, data.y_test, None, max(fit.batch_size, 256), False,
                                 None, scale=scale)  # fmt: skip
        test = (test_rows, None)
    dataset = ArrayDataset(x, y, weight, fit.batch_size, fit.shuffle, spec.seed, scale=scale,
                           **_options(fit))  # fmt: skip
    return FitPlan(dataset, None, kwargs, train_callbacks.make(fit.callbacks), _shapes(x), test,
                   dataset, test_batch_size=max(fit.batch_size, 256))  # fmt: skip


def _source(settings: Settings, ref: DatasetRef) -> tuple[Any, Any]:
    """What identifies a dataset's content on this host (an upload's file as it is now), and
    how to load it."""
    if ref.id is not None:
        path = uploads.local_file(settings, ref.id)
        stat = path.stat()
        key = ("upload", ref.id, str(path), stat.st_size, stat.st_mtime_ns)
        return key, lambda: uploads.load(path, settings)
    assert ref.name is not None
    name = ref.name
    return ("builtin", name), lambda: builtin.load(name)


def _split(
    x: Any, y: Any, sample_weight: Any, fraction: float
) -> tuple[tuple[Any, Any, Any], tuple[Any, ...], bool]:
    """validation_split as Keras does it (the last fraction, before any shuffling): the
    training rows, the validation rows, and whether both sides have rows (else Keras refuses
    the fraction itself)."""
    n = _length(x)
    at = math.floor(n * (1.0 - fraction))
    head, tail = slice(0, at), slice(at, None)
    val: tuple[Any, ...] = (_take(x, tail), _take(y, tail))
    if sample_weight is not None:
        val = (*val, sample_weight[tail])
    return (_take(x, head), _take(y, head), _take(sample_weight, head)), val, 0 < at < n


def make(settings: Settings, spec: JobSpec) -> FitPlan:
    """Load the job's data and lay out every fit argument as Keras takes it."""
    fit, scale = spec.fit, spec.dataset.scale
    key, loader = _source(settings, spec.dataset)
    data = None
    if spec.dataset.id is not None and key[3] > settings.dataset_stream_bytes:
        data = loader()
        if _mapped(data.x_train):  # read from disk batch by batch: nothing kept in memory
            return _streamed(settings, spec, data)
    loaded = data
    kept = kept_data.get(
        (key, scale), settings.data_cache_mb, lambda: loaded or loader(),
        lambda x: preprocess(x, scale),
    )  # fmt: skip
    data = kept.data
    x, y = kept.x_train, data.y_train
    sample_weight: Any = None
    if isinstance(fit.sample_weight, str):
        sample_weight = data.weights[fit.sample_weight].astype(np.float32)
    elif fit.sample_weight is not None:
        sample_weight = np.asarray(fit.sample_weight, dtype=np.float32)
    kwargs: dict[str, Any] = {
        "epochs": fit.epochs,
        "verbose": 2 if fit.verbose == "auto" else fit.verbose,
        "validation_data": _validation(settings, spec, data, kept.x_test),
        "class_weight": fit.class_weight,
        "initial_epoch": fit.initial_epoch,
        "steps_per_epoch": fit.steps_per_epoch,
        "validation_steps": fit.validation_steps,
        "validation_batch_size": fit.validation_batch_size,
        "validation_freq": fit.validation_freq,
    }
    test = None
    if kept.x_test is not None and data.y_test is not None:
        test = (kept.x_test, data.y_test)
    plan = FitPlan(x, y, kwargs, train_callbacks.make(fit.callbacks), _shapes(x), test,
                   test_batch_size=max(fit.batch_size, 256), kept=kept,
                   validation_batch_size=fit.validation_batch_size or fit.batch_size)  # fmt: skip
    plan.held_out["test"] = "test"
    if fit.validation_data == "test" and fit.validation_steps is None:
        plan.held_out["validation"] = "test"
    split = None
    if fit.validation_split and kwargs["validation_data"] is None:
        split = _split(x, y, sample_weight, fit.validation_split)
    # Split here, the validation rows from the kept dataset batched once; for Keras's own
    # fit, only a fraction that leaves rows on both sides (Keras refuses the others itself).
    keras_splits = split is not None and not fit.uses_pydataset and not split[2]
    if split is not None and not keras_splits:
        (x, y, sample_weight), kwargs["validation_data"], _ = split
        inline = fit.sample_weight is not None and not isinstance(fit.sample_weight, str)
        if not inline and fit.validation_steps is None and split[2]:
            plan.held_out["validation"] = ("split", _length(x), fit.sample_weight)
    if not fit.uses_pydataset:
        plan.x, plan.y = x, y
        kwargs.update(
            batch_size=fit.batch_size,
            shuffle=fit.shuffle,
            sample_weight=sample_weight,
            validation_split=fit.validation_split if keras_splits else 0.0,
        )
        return plan
    plan.dataset = ArrayDataset(
        x, y, sample_weight, fit.batch_size, fit.shuffle, spec.seed, **_options(fit)
    )
    plan.x, plan.y = plan.dataset, None
    return plan
