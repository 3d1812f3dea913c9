"""Ray Tune's side of benchmarks.sweep: given trials (their values, in order) run through Tune
with its ASHA scheduler, plain Keras one epoch at a time reporting to Tune.

Imported only for that part; Ray is the optional extra `bench`
(``.venv/bin/pip install 'ray[tune]==2.60.0'``).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no machine here reaches the internet

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler

NPZ = Path(__file__).resolve().parent.parent / "shared" / "datasets" / "data" / "mnist_sample.npz"
LR = "compile.optimizer.config.learning_rate"
UNITS = "model.layers[1].config.units"


def trainable(config: dict[str, Any]) -> None:
    """The quickstart on mnist-sample, as examples/sweep.json's spec trains it."""
    import keras
    import numpy as np
    import tensorflow as tf

    try:  # as a trainq worker sizes them for one slot on this machine (worker/warm.py)
        tf.config.threading.set_intra_op_parallelism_threads(config["intra"])
        tf.config.threading.set_inter_op_parallelism_threads(config["inter"])
    except RuntimeError:  # a reused actor: set by its first trial
        pass
    with np.load(NPZ) as data:
        x = data["x_train"].astype("float32") / 255.0
        y = data["y_train"]
    params = config["trial"]
    keras.utils.set_random_seed(42)
    model = keras.Sequential([
        keras.Input((28, 28)),
        keras.layers.Flatten(),
        keras.layers.Dense(params[UNITS], activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(10),
    ])  # fmt: skip
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=params[LR]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=config["steps_per_execution"],
    )
    for epoch in range(config["epochs"]):
        history = model.fit(
            x, y, batch_size=32, validation_split=0.1, initial_epoch=epoch, epochs=epoch + 1,
            verbose=0,
        )  # fmt: skip
        tune.report({k: float(v[-1]) for k, v in history.history.items()})


def run(
    trials: list[dict[str, Any]], epochs: int, slots: int, reduction: int, steps_per_execution: int
) -> dict[str, Any]:
    """Run the trials through Tune with ASHA (grace 1 epoch); wall time, epochs, best."""
    cores = os.cpu_count() or 1
    share = max(1, cores // slots)
    started = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False,
             object_store_memory=200 * 2**20)  # fmt: skip
    init = time.perf_counter() - started
    try:
        with tempfile.TemporaryDirectory(prefix="trainq-bench-ray-") as tmp:
            tuner = tune.Tuner(
                tune.with_resources(trainable, {"cpu": share}),
                param_space={
                    "trial": tune.grid_search(trials),
                    "epochs": epochs,
                    "steps_per_execution": steps_per_execution,
                    "intra": max(1, share // 2),
                    "inter": share,
                },
                tune_config=tune.TuneConfig(
                    metric="val_accuracy",
                    mode="max",
                    scheduler=ASHAScheduler(
                        max_t=epochs, grace_period=1, reduction_factor=reduction
                    ),
                    max_concurrent_trials=slots,
                    reuse_actors=True,  # Ray's fastest: one TensorFlow import per actor
                ),
                run_config=tune.RunConfig(storage_path=tmp, name="sweep", verbose=0),
            )
            started = time.perf_counter()
            grid = tuner.fit()
            took = time.perf_counter() - started
            results = [grid[i] for i in range(len(grid))]
            done = [r.metrics for r in results if r.metrics and r.error is None]
            full = [m["val_accuracy"] for m in done if m["training_iteration"] == epochs]
            return {
                "version": ray.__version__,
                "init": init,
                "wall": took,
                "epochs": sum(int(m["training_iteration"]) for m in done),
                "best": max(full) if full else float("nan"),
                "errors": sum(r.error is not None for r in results),
            }
    finally:
        ray.shutdown()
