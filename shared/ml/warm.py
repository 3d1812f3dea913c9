"""Warm-up of a fresh training process: what Keras and TensorFlow set up on first use, done
before a job waits for it."""

from __future__ import annotations

import tempfile


def load_tensorflow(intra_op_threads: int, inter_op_threads: int) -> None:
    """Import TensorFlow and size its thread pools (before its first op, or they are fixed)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)


def first_fit() -> None:
    """Train a throwaway model for one step, so that what TensorFlow sets up on a process's first
    fit (its runtime, the data pipeline, summary writers: seconds) is done before a job waits."""
    import keras
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="trainq-warm-") as logs:
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        model.compile(optimizer="adam", loss="mse")
        x = np.zeros((8, 4), dtype="float32")
        model.fit(x, x[:, :2], epochs=1, verbose=0, callbacks=[keras.callbacks.TensorBoard(logs)])
        model.evaluate(x, x[:, :2], verbose=0)
    keras.backend.clear_session()
