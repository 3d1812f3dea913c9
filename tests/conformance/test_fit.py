"""Every fit parameter: a job that uses it, and its observable effect."""

from __future__ import annotations

import math
import os
import queue
from typing import Any

import numpy as np
import pytest

from tests.conformance.conftest import N, Runner, history, mlp_spec, npz, plain_keras, toy


def _iterations(runner: Runner, job: dict[str, Any]) -> int:
    """Optimizer steps the trained model took (kept in the saved .keras file)."""
    return int(runner.model(job).optimizer.iterations.numpy())


def test_epochs_and_batch_size(runner: Runner, toy_id: str) -> None:
    job = runner.run(mlp_spec(toy_id, epochs=3, batch_size=50))
    assert [h["epoch"] for h in job["history"]] == [1, 2, 3]
    assert _iterations(runner, job) == 3 * math.ceil(N / 50)


def test_steps_per_epoch_trains_that_many_batches(runner: Runner, toy_id: str) -> None:
    job = runner.run(mlp_spec(toy_id, epochs=2, steps_per_epoch=5))
    assert _iterations(runner, job) == 10


def test_initial_epoch_records_only_the_later_epochs(runner: Runner, toy_id: str) -> None:
    job = runner.run(mlp_spec(toy_id, initial_epoch=2, epochs=4))
    assert [h["epoch"] for h in job["history"]] == [3, 4]
    assert _iterations(runner, job) == 2 * math.ceil(N / 16)


def test_verbose_sets_what_the_worker_prints(
    runner: Runner, toy_id: str, capfd: pytest.CaptureFixture[str]
) -> None:
    runner.run(mlp_spec(toy_id, verbose=0))
    quiet = capfd.readouterr().out
    runner.run(mlp_spec(toy_id, verbose=2))
    loud = capfd.readouterr().out
    assert "Epoch 1/2" not in quiet
    assert "Epoch 1/2" in loud and "Epoch 2/2" in loud


def test_validation_split_adds_val_metrics_on_the_last_fraction(
    runner: Runner, toy_id: str
) -> None:
    job = runner.run(mlp_spec(toy_id, validation_split=0.25))
    assert all({"val_loss", "val_accuracy"} <= set(h["metrics"]) for h in job["history"])
    x, y = toy()
    tail = slice(int(N * 0.75), None)
    evaluated = runner.model(job).evaluate(x[tail], y[tail], verbose=0, return_dict=True)
    assert job["history"][-1]["metrics"]["val_loss"] == pytest.approx(evaluated["loss"], abs=1e-5)


def test_validation_data_test_split(runner: Runner, toy_id: str) -> None:
    job = runner.run(mlp_spec(toy_id, validation_data="test"))
    last = job["history"][-1]["metrics"]
    assert last["val_loss"] == pytest.approx(job["test_metrics"]["loss"], abs=1e-5)


def test_validation_data_another_dataset(runner: Runner, toy_id: str) -> None:
    xv, yv = toy(40, seed=5)
    other = runner.upload(npz(x_train=xv, y_train=yv), name="val")
    job = runner.run(mlp_spec(toy_id, validation_data={"dataset": {"id": other["id"]}}))
    evaluated = runner.model(job).evaluate(xv, yv, verbose=0, return_dict=True)
    assert job["history"][-1]["metrics"]["val_loss"] == pytest.approx(evaluated["loss"], abs=1e-5)


@pytest.mark.slow
def test_inline_validation_data_steps_and_batch_size(runner: Runner, toy_id: str) -> None:
    xv, yv = toy(30, seed=6)
    inline = {"x": xv.tolist(), "y": yv.tolist()}
    job = runner.run(mlp_spec(toy_id, validation_data=inline))
    model = runner.model(job)
    everything = model.evaluate(xv, yv, verbose=0, return_dict=True)["loss"]
    assert job["history"][-1]["metrics"]["val_loss"] == pytest.approx(everything, abs=1e-5)
    # one validation step of 7 samples: the validation loss is that of the first 7 only
    job = runner.run(
        mlp_spec(toy_id, validation_data=inline, validation_steps=1, validation_batch_size=7)
    )
    first7 = runner.model(job).evaluate(xv[:7], yv[:7], verbose=0, return_dict=True)["loss"]
    assert job["history"][-1]["metrics"]["val_loss"] == pytest.approx(first7, abs=1e-5)


def test_validation_freq(runner: Runner, toy_id: str) -> None:
    job = runner.run(mlp_spec(toy_id, epochs=4, validation_freq=2, validation_data="test"))
    with_val = [h["epoch"] for h in job["history"] if "val_loss" in h["metrics"]]
    assert with_val == [2, 4]


@pytest.mark.slow  # trains twice: by the service and by plain Keras
def test_shuffle_false_as_in_keras(runner: Runner, toy_id: str) -> None:
    job = runner.run(mlp_spec(toy_id, shuffle=False))
    np.testing.assert_allclose(history(job), plain_keras({"shuffle": False}), atol=1e-6)
    assert history(job) != plain_keras({"shuffle": True})


@pytest.mark.slow  # trains twice: by the service and by plain Keras
def test_class_weight_changes_the_loss_as_in_keras(runner: Runner, toy_id: str) -> None:
    job = runner.run(mlp_spec(toy_id, class_weight={"0": 5.0, "1": 1.0, "2": 0.5}))
    expected = plain_keras({"class_weight": {0: 5.0, 1: 1.0, 2: 0.5}})
    np.testing.assert_allclose(history(job), expected, atol=1e-6)
    assert history(job)[0] != pytest.approx(plain_keras({})[0], abs=1e-3)


@pytest.mark.slow
def test_sample_weight_inline_and_from_the_upload(runner: Runner, toy_id: str) -> None:
    _, y = toy()
    weights = np.where(y == 0, 3.0, 1.0)  # the upload's sample_weight array holds the same
    inline = runner.run(mlp_spec(toy_id, sample_weight=weights.tolist()))
    stored = runner.run(mlp_spec(toy_id, sample_weight="sample_weight"))
    expected = plain_keras({"sample_weight": weights.astype("float32")})
    np.testing.assert_allclose(history(inline), expected, atol=1e-6)
    np.testing.assert_allclose(history(stored), expected, atol=1e-6)
    assert history(inline)[0] != pytest.approx(plain_keras({})[0], abs=1e-3)


def _keras_worker_pids() -> list[int]:
    """Process ids Keras's data worker processes reported at start (its own id queue)."""
    from keras.src.trainers.data_adapters import py_dataset_adapter

    pids: list[int] = []
    while py_dataset_adapter._WORKER_ID_QUEUE is not None:
        try:
            pids.append(py_dataset_adapter._WORKER_ID_QUEUE.get(timeout=0.5))
        except queue.Empty:
            break
    return pids


@pytest.mark.parametrize("multiprocessing", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_workers_go_through_a_pydataset(runner: Runner, toy_id: str, multiprocessing: bool) -> None:
    from shared.ml import fit_plan
    from shared.spec.job import JobSpec

    fit = {"workers": 2, "use_multiprocessing": multiprocessing, "max_queue_size": 3}
    spec = mlp_spec(toy_id, **fit)
    plan = fit_plan.make(runner.settings, JobSpec.model_validate(spec))
    assert plan.dataset is not None and plan.x is plan.dataset
    data = plan.dataset
    assert (data.workers, data.use_multiprocessing, data.max_queue_size) == (2, multiprocessing, 3)
    _keras_worker_pids()  # nothing left over from earlier tests
    job = runner.run(spec)
    assert [h["epoch"] for h in job["history"]] == [1, 2]
    assert _iterations(runner, job) == 2 * math.ceil(N / 16)
    pids = _keras_worker_pids()
    if multiprocessing:  # two worker processes an epoch, none of them this one
        # (a pool process that Keras ends with a short epoch before it has started reports no id)
        assert 2 <= len(set(pids)) <= 4 and os.getpid() not in pids, pids
    else:
        assert pids == []


def test_worker_processes_train_as_worker_threads_do(runner: Runner, toy_id: str) -> None:
    threads = runner.run(mlp_spec(toy_id, workers=2, use_multiprocessing=False))
    processes = runner.run(mlp_spec(toy_id, workers=2, use_multiprocessing=True))
    np.testing.assert_allclose(history(processes), history(threads), atol=1e-6)


def test_two_worker_threads_serve_the_batches(runner: Runner, toy_id: str) -> None:
    import keras

    from shared.ml import fit_plan
    from shared.ml.build import build_model, compile_model
    from shared.spec.job import JobSpec

    spec = JobSpec.model_validate(mlp_spec(toy_id, workers=2, batch_size=4, epochs=1))
    plan = fit_plan.make(runner.settings, spec)
    model = build_model(spec, plan.input_shapes)
    compile_model(model, spec)
    model.fit(plan.x, plan.y, **{**plan.kwargs, "verbose": 0})
    assert plan.dataset is not None
    # Keras peeks at the first batch itself, then its two worker threads serve the epoch.
    workers = plan.dataset.threads - {"MainThread"}
    assert len(workers) == 2, plan.dataset.threads
    keras.backend.clear_session()
