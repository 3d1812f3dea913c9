"""The datasets a training process keeps ready between jobs: preprocessed, with the batches
of their validation and test rows built.

A sweep's trials, and most series of jobs, train on one dataset again and again. For each job,
preprocessing its arrays (float32, scaled) and turning its validation and test rows into the
batches Keras evaluates took about 0.1 s of a one-epoch job on ``mnist-sample`` (a tenth of
it), the same work each time. A process now keeps the datasets it used last, up to
``TRAINQ_DATA_CACHE_MB``, the least recently used dropped first: the next job on the same data
pays none of it. The training rows are kept as arrays, never as batches: their order comes from
each job's seed, as Keras shuffles them.

Imports TensorFlow when batches are first built: the worker's training processes use this.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared.datasets import builtin

MB = 1024 * 1024


def nbytes(data: Any) -> int:
    """Bytes held by an array, or by the arrays of a dict, list or tuple of them."""
    return sum(int(getattr(a, "nbytes", 0)) for a in _leaves(data))


def _leaves(data: Any) -> list[Any]:
    if isinstance(data, dict):
        return [leaf for v in data.values() for leaf in _leaves(v)]
    if isinstance(data, list | tuple):
        return [leaf for v in data for leaf in _leaves(v)]
    return [] if data is None else [data]


def _as_keras(data: Any) -> Any:
    """Arrays as Keras feeds them from arrays: floats in its float type, lists as tuples."""
    if isinstance(data, dict):
        return {k: _as_keras(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return tuple(_as_keras(v) for v in data)
    array = np.asarray(data)
    import keras

    floatx = keras.config.floatx()
    if np.issubdtype(array.dtype, np.floating) and array.dtype != np.dtype(floatx):
        return array.astype(floatx)
    return array


@dataclass
class Kept:
    """One dataset as jobs train on it: its arrays, its inputs preprocessed, and the batches of
    held-out rows built so far (by what they hold and their batch size)."""

    data: builtin.Splits
    x_train: Any
    x_test: Any
    nbytes: int
    batches: dict[Hashable, Any] = field(default_factory=dict)

    def held_out(self, key: Hashable, rows: tuple[Any, ...], batch_size: int) -> Any:
        """``rows`` ((x, y) or (x, y, sample_weight)) in unshuffled batches, as a
        ``tf.data.Dataset``: the same batches Keras makes of such arrays, built once for the
        ``key`` (what the rows are: their split, order of outputs, weights) and batch size."""
        found = self.batches.get((key, batch_size))
        if found is None:
            import tensorflow as tf

            rows = tuple(_as_keras(r) for r in rows)
            found = tf.data.Dataset.from_tensor_slices(rows).batch(batch_size)
            self.batches[(key, batch_size)] = found
            _CACHE.grew(self, nbytes(rows))
        return found


class _Cache:
    """The process's kept datasets, least recently used first, within a budget of bytes."""

    def __init__(self) -> None:
        self.entries: OrderedDict[Hashable, Kept] = OrderedDict()
        self.limit = 0
        self._lock = threading.Lock()

    def get(
        self, key: Hashable, limit: int, load: Callable[[], builtin.Splits],
        prepare: Callable[[Any], Any],
    ) -> Kept:  # fmt: skip
        with self._lock:
            self.limit = limit
            kept = self.entries.get(key)
            if kept is not None:
                self.entries.move_to_end(key)
                return kept
        data = load()
        x_test = None if data.x_test is None else prepare(data.x_test)
        x_train = prepare(data.x_train)
        arrays = (data.x_train, data.y_train, data.x_test, data.y_test, data.weights)
        held = {id(a): a for a in _leaves((*arrays, x_train, x_test))}  # each array once
        kept = Kept(data, x_train, x_test, nbytes(list(held.values())))
        with self._lock:
            self.entries[key] = kept
            self._trim(kept)
        return kept

    def grew(self, kept: Kept, added: int) -> None:
        with self._lock:
            kept.nbytes += added
            self._trim(kept)

    def _trim(self, newest: Kept) -> None:
        """Drop the least recently used until the rest fits; one that alone does not fit is
        used by its job and not kept (nor does it push the others out)."""
        if newest.nbytes > self.limit:
            for key, kept in list(self.entries.items()):
                if kept is newest:
                    del self.entries[key]
            return
        while sum(k.nbytes for k in self.entries.values()) > self.limit:
            key = next(k for k, kept in self.entries.items() if kept is not newest)
            del self.entries[key]

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()


_CACHE = _Cache()


def get(
    key: Hashable, limit_mb: int, load: Callable[[], builtin.Splits],
    prepare: Callable[[Any], Any],
) -> Kept:  # fmt: skip
    """The dataset known by ``key``: kept from an earlier job, or loaded by ``load`` with its
    inputs through ``prepare``, and kept while the process's datasets fit in ``limit_mb``."""
    return _CACHE.get(key, limit_mb * MB, load, prepare)


def clear() -> None:
    """Keep nothing (a test's fresh start)."""
    _CACHE.clear()
