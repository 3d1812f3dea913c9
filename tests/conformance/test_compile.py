"""Every compile parameter: a job that uses it, and its effect, checked against plain Keras."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.conformance.conftest import N, Runner, history, mlp_spec, plain_keras, toy


def _with_compile(dataset_id: str, **compile: Any) -> dict[str, Any]:
    spec = mlp_spec(dataset_id)
    spec["compile"].update(compile)
    return spec


@pytest.mark.slow  # ten optimizers, each trained by the service and by plain Keras
@pytest.mark.parametrize(
    ("optimizer", "make"),
    [
        pytest.param("sgd", lambda k: k.optimizers.SGD(), id="name"),
        pytest.param(
            {"class_name": "SGD",
             "config": {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}},
            lambda k: k.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
            id="sgd-nesterov",
        ),
        pytest.param(
            {"class_name": "AdamW", "config": {"learning_rate": 0.02, "weight_decay": 0.1}},
            lambda k: k.optimizers.AdamW(learning_rate=0.02, weight_decay=0.1),
            id="adamw",
        ),
        pytest.param(
            {"class_name": "RMSprop", "config": {"learning_rate": {
                "class_name": "ExponentialDecay",
                "config": {"initial_learning_rate": 0.05, "decay_steps": 5, "decay_rate": 0.5},
            }}},
            lambda k: k.optimizers.RMSprop(learning_rate=k.optimizers.schedules.ExponentialDecay(
                initial_learning_rate=0.05, decay_steps=5, decay_rate=0.5)),
            id="rmsprop-exponential-decay",
        ),
        pytest.param(
            {"class_name": "Adagrad", "config": {"learning_rate": {
                "class_name": "PiecewiseConstantDecay",
                "config": {"boundaries": [10], "values": [0.1, 0.01]},
            }}},
            lambda k: k.optimizers.Adagrad(
                learning_rate=k.optimizers.schedules.PiecewiseConstantDecay(
                    boundaries=[10], values=[0.1, 0.01])),
            id="adagrad-piecewise",
        ),
        pytest.param("adadelta", lambda k: k.optimizers.Adadelta(), id="adadelta"),
        pytest.param("adamax", lambda k: k.optimizers.Adamax(), id="adamax"),
        pytest.param("nadam", lambda k: k.optimizers.Nadam(), id="nadam"),
        pytest.param({"class_name": "Ftrl", "config": {"learning_rate": 0.2}},
                     lambda k: k.optimizers.Ftrl(learning_rate=0.2), id="ftrl"),
        pytest.param({"class_name": "Lion", "config": {"learning_rate": 0.001}},
                     lambda k: k.optimizers.Lion(learning_rate=0.001), id="lion"),
    ],
)  # fmt: skip
def test_optimizer_trains_as_in_keras(
    runner: Runner, toy_id: str, optimizer: Any, make: Any
) -> None:
    import keras

    job = runner.run(_with_compile(toy_id, optimizer=optimizer))
    expected = plain_keras({}, optimizer=make(keras))
    np.testing.assert_allclose(history(job), expected, rtol=0, atol=1e-6)
    assert history(job) != plain_keras({})  # not just the default Adam


@pytest.mark.slow  # trains twice: by the service and by plain Keras
def test_loss_from_logits_as_in_keras(runner: Runner, toy_id: str) -> None:
    import keras

    loss = {"class_name": "SparseCategoricalCrossentropy", "config": {"from_logits": False}}
    job = runner.run(_with_compile(toy_id, loss=loss))
    reference = plain_keras({}, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=False))
    np.testing.assert_allclose(history(job), reference, atol=1e-6)
    assert abs(history(job)[0] - plain_keras({})[0]) > 1e-3  # logits read as probabilities


def test_reduction_sum_multiplies_the_loss_by_the_batch_size(runner: Runner, toy_id: str) -> None:
    frozen = {"class_name": "SGD", "config": {"learning_rate": 0.0}}  # weights never move
    losses = {}
    for reduction in ("sum_over_batch_size", "sum"):
        loss = {"class_name": "SparseCategoricalCrossentropy",
                "config": {"from_logits": True, "reduction": reduction}}  # fmt: skip
        losses[reduction] = history(runner.run(_with_compile(toy_id, optimizer=frozen, loss=loss)))
    assert N % 16 == 0
    np.testing.assert_allclose(
        losses["sum"], np.array(losses["sum_over_batch_size"]) * 16, rtol=1e-5
    )


def test_metric_names_and_objects(runner: Runner, toy_id: str) -> None:
    metrics = ["accuracy", {"class_name": "SparseTopKCategoricalAccuracy",
                            "config": {"k": 2, "name": "top2"}}]  # fmt: skip
    job = runner.run(_with_compile(toy_id, metrics=metrics))
    for row in job["history"]:
        assert {"loss", "accuracy", "top2"} <= set(row["metrics"])
        assert row["metrics"]["top2"] >= row["metrics"]["accuracy"]
    assert job["test_metrics"]["top2"] >= job["test_metrics"]["accuracy"]


def test_weighted_metrics_use_the_sample_weights(runner: Runner, toy_id: str) -> None:
    x, y = toy()
    weights = np.where(y == 0, 1.0, 0.0)  # only class 0 counts
    spec = _with_compile(
        toy_id, optimizer={"class_name": "SGD", "config": {"learning_rate": 0.0}},
        weighted_metrics=[{"class_name": "SparseCategoricalAccuracy", "config": {"name": "wacc"}}],
    )  # fmt: skip
    spec["fit"].update(sample_weight=weights.tolist(), epochs=1)
    job = runner.run(spec)
    predicted = np.argmax(runner.model(job)(x), axis=1)
    expected = float(((predicted == y) * weights).sum() / weights.sum())
    assert job["history"][0]["metrics"]["wacc"] == pytest.approx(expected, abs=1e-6)
    assert expected != pytest.approx(float((predicted == y).mean()), abs=1e-3)


@pytest.mark.slow
def test_run_eagerly_steps_per_execution_jit_compile_reach_keras(
    runner: Runner, toy_id: str
) -> None:
    import keras

    from shared.ml.build import build_model, compile_model
    from shared.spec.job import JobSpec

    options = {"run_eagerly": True, "steps_per_execution": 4, "jit_compile": False}
    spec = _with_compile(toy_id, **options)
    model = build_model(JobSpec.model_validate(spec), (8,))
    compile_model(model, JobSpec.model_validate(spec))
    assert (model.run_eagerly, model.steps_per_execution, model.jit_compile) == (True, 4, False)
    job = runner.run(spec)  # and it trains exactly as Keras does with them
    np.testing.assert_allclose(history(job), plain_keras({}, **options), atol=1e-6)
    keras.backend.clear_session()


def test_loss_weights_give_the_weighted_sum(runner: Runner) -> None:
    from tests.conformance.test_models import two_output_job

    job = two_output_job(runner, loss_weights=[0.7, 0.3])
    for row in job["history"]:
        m = row["metrics"]
        assert m["loss"] == pytest.approx(0.7 * m["cls_loss"] + 0.3 * m["reg_loss"], rel=1e-5)
