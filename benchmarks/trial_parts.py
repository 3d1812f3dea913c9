"""Where a one-epoch trial's own work goes, in one plain process (for benchmarks.sweep): what
the worker does for a job besides the epoch (build and compile, evaluate on the test split,
save the two model files), each timed alone for the same values."""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import median, row
from shared.datasets.builtin import load
from shared.ml.build import build_model, build_state, compile_model, preprocess
from shared.ml.warm import load_tensorflow
from shared.spec.job import JobSpec
from shared.sweeps.spec import with_values


def show(trials: list[dict[str, Any]], base: dict[str, Any], verbose: bool = True) -> float:
    """Time each part of each trial; with ``verbose`` print the medians; return a whole trial's
    (the median of each trial's parts added up)."""
    load_tensorflow(1, 2)  # as a worker with one slot on 2 cores sizes it (worker/warm.py)
    import keras

    spec0 = JobSpec.model_validate(base)
    data = load(spec0.dataset.name)
    x, y = preprocess(data.x_train, spec0.dataset.scale), np.asarray(data.y_train)
    x_test = preprocess(data.x_test, spec0.dataset.scale)
    at = int(len(x) * (1 - spec0.fit.validation_split))
    parts: dict[str, list[float]] = {"build": [], "epoch": [], "test": [], "save": []}
    with tempfile.TemporaryDirectory(prefix="trainq-bench-parts-") as tmp:
        for params in [trials[0], *trials]:  # the first once more: a warm-up, not counted
            spec = JobSpec.model_validate(with_values(copy.deepcopy(base), params))
            t0 = time.perf_counter()
            keras.utils.set_random_seed(42)
            model = build_model(spec, tuple(x.shape[1:]))
            compile_model(model, spec, steps_per_execution=32)
            build_state(model, (x[:1], y[:1]))
            t1 = time.perf_counter()
            model.fit(x[:at], y[:at], validation_data=(x[at:], y[at:]), batch_size=32,
                      epochs=1, verbose=0)  # fmt: skip
            t2 = time.perf_counter()
            model.evaluate(x_test, data.y_test, batch_size=256, verbose=0)
            t3 = time.perf_counter()
            model.save(Path(tmp) / "model.keras")
            model.save(Path(tmp) / "model.h5")
            t4 = time.perf_counter()
            keras.backend.clear_session(free_memory=False)
            for key, took in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                parts[key].append(took)
    whole = median([sum(took) for took in zip(*(parts[k][1:] for k in parts), strict=True)])
    if verbose:
        print(f"the same {len(trials)} values in one plain process (medians):")
        row("build + compile + optimizer state", median(parts["build"][1:]), "s")
        row("the epoch (model.fit)", median(parts["epoch"][1:]), "s")
        row("evaluate on the 10,000 test images", median(parts["test"][1:]), "s")
        row("save model.keras + model.h5", median(parts["save"][1:]), "s")
        row("a whole trial (its parts added up)", whole, "s")
    return whole
