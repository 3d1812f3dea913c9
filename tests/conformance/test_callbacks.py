"""The allow-listed callbacks: EarlyStopping, ReduceLROnPlateau, TerminateOnNaN,
LearningRateScheduler with declarative schedules, and KeepBest (keep the best epoch's model)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.conftest import Runner, mlp_spec


def _with(dataset_id: str, *callbacks: dict[str, Any], **fit: Any) -> dict[str, Any]:
    return mlp_spec(dataset_id, callbacks=list(callbacks), **fit)


def test_early_stopping_stops_before_the_last_epoch(runner: Runner, toy_id: str) -> None:
    never_good_enough = {"monitor": "loss", "min_delta": 100.0, "patience": 1}
    job = runner.run(_with(toy_id, {"class_name": "EarlyStopping", "config": never_good_enough},
                           epochs=6))  # fmt: skip
    assert [h["epoch"] for h in job["history"]] == [1, 2]
    assert job["status"] == "succeeded"
    assert job["progress"]["percent"] == 100.0  # done, as far as the user is concerned
    assert job["progress"]["text"] == "stopped early after epoch 2 of 6"


def test_reduce_lr_on_plateau_halves_the_learning_rate(runner: Runner, toy_id: str) -> None:
    config = {"monitor": "loss", "min_delta": 100.0, "patience": 0, "factor": 0.5}
    job = runner.run(_with(toy_id, {"class_name": "ReduceLROnPlateau", "config": config},
                           epochs=3))  # fmt: skip
    rates = [h["metrics"]["learning_rate"] for h in job["history"]]
    # each epoch logs the rate it trained with; the plateau is seen from epoch 2 on
    assert rates == pytest.approx([0.01, 0.01, 0.005])


def test_terminate_on_nan_stops_a_diverging_job(runner: Runner, toy_id: str) -> None:
    spec = _with(toy_id, {"class_name": "TerminateOnNaN"}, epochs=5)
    spec["compile"]["optimizer"] = {"class_name": "SGD", "config": {"learning_rate": 1e30}}
    job = runner.run(spec, expect="failed")  # a NaN loss fails a job, saying so
    assert len(job["history"]) < 5
    assert job["error"].startswith("NaN loss")


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        pytest.param([0.1, 0.05, 0.01], [0.1, 0.05, 0.01], id="per-epoch-list"),
        pytest.param(
            {"class_name": "ExponentialDecay",
             "config": {"initial_learning_rate": 0.1, "decay_steps": 1, "decay_rate": 0.5}},
            [0.1, 0.05, 0.025],
            id="keras-schedule-by-epoch",
        ),
    ],
)  # fmt: skip
def test_learning_rate_scheduler(
    runner: Runner, toy_id: str, schedule: Any, expected: list[float]
) -> None:
    callback = {"class_name": "LearningRateScheduler", "config": {"schedule": schedule}}
    job = runner.run(_with(toy_id, callback, epochs=3))
    assert [h["metrics"]["learning_rate"] for h in job["history"]] == pytest.approx(expected)


def test_keep_best_keeps_the_best_epochs_model(runner: Runner, toy_id: str) -> None:
    spec = _with(
        toy_id, {"class_name": "KeepBest", "config": {"monitor": "val_loss"}},
        # a sensible rate, then one far too large: the last epochs are worse than the best
        {"class_name": "LearningRateScheduler", "config": {"schedule": [0.5, 0.5, 0.5, 4.0]}},
        epochs=5, validation_data="test",
    )  # fmt: skip
    spec["compile"]["optimizer"] = "sgd"
    job = runner.run(spec)
    losses = [h["metrics"]["val_loss"] for h in job["history"]]
    losses = [v if v is not None else float("inf") for v in losses]  # NaN is recorded as null
    # the stored model is the best epoch's: evaluated on the same split it scores that epoch's loss
    assert job["test_metrics"]["loss"] == pytest.approx(min(losses), abs=1e-5)
    assert min(losses) != pytest.approx(losses[-1], abs=1e-4), "pick a run whose best is not last"
