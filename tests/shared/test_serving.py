"""Predict's softmax is the quickstart's tf.nn.softmax."""

from __future__ import annotations

import numpy as np

from shared.serving import softmax


def test_softmax_matches_tensorflow() -> None:
    import tensorflow as tf

    logits = np.random.default_rng(0).normal(0, 20, size=(64, 10)).astype(np.float32)
    ours = softmax(logits)
    np.testing.assert_allclose(ours, tf.nn.softmax(logits).numpy(), atol=1e-6)
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, atol=1e-6)
    assert (ours.argmax(axis=1) == logits.argmax(axis=1)).all()
