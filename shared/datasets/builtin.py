"""Built-in datasets: the keras.datasets loaders, and an MNIST sample shipped with trainq."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import DatasetUnavailable

SAMPLE_FILE = Path(__file__).parent / "data" / "mnist_sample.npz"


# One array, or named arrays for the inputs (outputs) of a multi-input (multi-output) model.
Data = np.ndarray | dict[str, np.ndarray]
# Per array name ("" for a single unnamed array): the shape of one sample, and the dtype.
Shapes = dict[str, tuple[tuple[int, ...], str]]


@dataclass(frozen=True)
class Splits:
    """Arrays of one dataset, as keras.datasets returns them (raw values, not scaled)."""

    x_train: Data
    y_train: Data
    x_test: Data | None
    y_test: Data | None
    weights: dict[str, np.ndarray] = field(default_factory=dict)  # sample-weight arrays


@dataclass(frozen=True)
class Layout:
    """What a dataset holds, without its data: enough to build and check a model against it."""

    x: Shapes
    y: Shapes
    n_train: int
    n_test: int | None
    weights: dict[str, int] = field(default_factory=dict)  # sample-weight array -> length


@dataclass(frozen=True)
class Builtin:
    """A dataset known by name, and the files it needs on this machine."""

    name: str
    description: str
    input_shape: tuple[int, ...]
    files: tuple[str, ...]  # relative to $KERAS_HOME, or absolute
    n_train: int = 60_000
    n_test: int = 10_000
    label_dtype: str = "uint8"

    @property
    def layout(self) -> Layout:
        """Shapes and sizes, known without loading the data."""
        return Layout(
            {"": (self.input_shape, "uint8")}, {"": ((), self.label_dtype)}, self.n_train,
            self.n_test,
        )  # fmt: skip


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin(
            "mnist-sample",
            "5,000 MNIST training digits (500 per class) and the 10,000-image MNIST test set, "
            "shipped with trainq",
            (28, 28),
            (str(SAMPLE_FILE),),
            n_train=5_000,
        ),
        Builtin("mnist", "MNIST handwritten digits, 60k/10k", (28, 28), ("datasets/mnist.npz",)),
        Builtin(
            "fashion_mnist",
            "Fashion-MNIST clothing images, 60k/10k",
            (28, 28),
            tuple(
                f"datasets/fashion-mnist/{f}"
                for f in (
                    "train-labels-idx1-ubyte.gz",
                    "train-images-idx3-ubyte.gz",
                    "t10k-labels-idx1-ubyte.gz",
                    "t10k-images-idx3-ubyte.gz",
                )
            ),
        ),
        Builtin(
            "boston_housing",
            "Boston housing prices, 13 features, regression",
            (13,),
            ("datasets/boston_housing.npz",),
            n_train=404,
            n_test=102,
            label_dtype="float64",
        ),
    )
}

_HOW_TO_PROVIDE = {
    "mnist": "copy mnist.npz (as keras.datasets.mnist downloads it) to {path}",
    "fashion_mnist": "install Debian's dataset-fashion-mnist and copy the four .gz files from "
    "/usr/share/datasets/fashion-mnist/ into {dir}",
    "boston_housing": "copy boston_housing.npz (as keras.datasets.boston_housing downloads it) "
    "to {path}",
}


def keras_home() -> Path:
    """Where keras.datasets looks for its cached files."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()


def paths(builtin: Builtin) -> list[Path]:
    """Where this machine keeps the dataset's files, in the order of ``files``."""
    return [Path(f) if os.path.isabs(f) else keras_home() / f for f in builtin.files]


def _missing_files(builtin: Builtin) -> list[Path]:
    return [p for p in paths(builtin) if not p.is_file()]


def describe(name: str) -> Builtin:
    """The built-in dataset of that name, if this server has its files; else a clear error."""
    builtin = BUILTINS.get(name)
    if builtin is None:
        raise DatasetUnavailable(
            f"unknown dataset {name!r}; built-in datasets are: {', '.join(sorted(BUILTINS))}",
            details={"field": "dataset.name"},
        )
    missing = _missing_files(builtin)
    if missing:
        how = _HOW_TO_PROVIDE.get(name, "reinstall trainq").format(
            path=missing[0], dir=missing[0].parent
        )
        raise DatasetUnavailable(
            f"dataset {name!r} is not available on this server (no internet to download it): "
            f"missing {', '.join(str(p) for p in missing)}; to provide it, {how}",
            details={"field": "dataset.name", "missing": [str(p) for p in missing]},
        )
    return builtin


def _keras_loader(name: str) -> Any:
    import keras

    return getattr(keras.datasets, name).load_data


@lru_cache(maxsize=4)
def load(name: str) -> Splits:
    """Load a built-in dataset once per process (read-only arrays shared by all jobs)."""
    describe(name)
    if name == "mnist-sample":
        with np.load(SAMPLE_FILE, allow_pickle=False) as data:
            arrays = {k: data[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        splits = Splits(**arrays)
    else:
        (x_train, y_train), (x_test, y_test) = _keras_loader(name)()
        splits = Splits(x_train, y_train, x_test, y_test)
    for array in (splits.x_train, splits.y_train, splits.x_test, splits.y_test):
        if isinstance(array, np.ndarray):
            array.setflags(write=False)
    return splits
