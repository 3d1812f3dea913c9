"""Predict's softmax is the quickstart's tf.nn.softmax."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.ml.serving import ModelCache, softmax


def test_softmax_matches_tensorflow() -> None:
    import tensorflow as tf

    logits = np.random.default_rng(0).normal(0, 20, size=(64, 10)).astype(np.float32)
    ours = softmax(logits)
    np.testing.assert_allclose(ours, tf.nn.softmax(logits).numpy(), atol=1e-6)
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, atol=1e-6)
    assert (ours.argmax(axis=1) == logits.argmax(axis=1)).all()


def _saved_model(path: Path, units: int) -> Path:
    import keras

    keras.utils.set_random_seed(units)
    model = keras.Sequential(
        [keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(units)]
    )
    model.save(path)
    return path


def test_served_model_gives_model_x_and_the_cache_keeps_to_its_budget(tmp_path: Path) -> None:
    import keras

    small = _saved_model(tmp_path / "a.keras", 10)
    large = _saved_model(tmp_path / "b.keras", 20)
    cache = ModelCache(budget_bytes=large.stat().st_size + 1)
    first = cache.get(small, "a")
    x = np.random.default_rng(1).random((5, 28, 28)).astype(np.float32)
    eager = np.asarray(keras.models.load_model(small)(x, training=False))
    np.testing.assert_allclose(first(x)[0], eager, atol=1e-6)
    np.testing.assert_allclose(first(x[:1])[0], eager[:1], atol=1e-6)  # any batch size, one graph
    assert cache.get(small, "a") is first  # loaded once
    cache.get(large, "b")  # over the budget together: the least recently used goes
    assert cache.size_bytes == large.stat().st_size
    assert cache.get(small, "a") is not first
