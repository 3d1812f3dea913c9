"""JobSpec validation: the allow-lists refuse anything that could name code or a module."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from shared.spec.job import JobSpec
from tests.specs import QUICKSTART

Spec = dict[str, Any]


def _spec(change: Callable[[Spec], None]) -> Spec:
    spec = copy.deepcopy(QUICKSTART)
    change(spec)
    return spec


def _layer(i: int, **fields: Any) -> Callable[[Spec], None]:
    return lambda s: s["model"]["layers"][i].update(fields)


def _layer_config(i: int, **config: Any) -> Callable[[Spec], None]:
    return lambda s: s["model"]["layers"][i]["config"].update(config)


def _set(section: str, **fields: Any) -> Callable[[Spec], None]:
    return lambda s: s[section].update(fields)


def test_quickstart_spec_validates() -> None:
    spec = JobSpec.model_validate(QUICKSTART)
    assert [layer.class_name for layer in spec.model.layers] == [
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
    ]
    assert spec.fit.epochs == 5
    assert spec.compile.optimizer == "adam"
    assert spec.dataset.name == "mnist-sample"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            _layer(1, class_name="Lambda"),
            ["model.layers.1", "unknown or disallowed layer 'Lambda'"],
            id="lambda-layer",
        ),
        pytest.param(
            _layer(1, class_name="NoSuchLayer"),
            ["model.layers.1", "unknown or disallowed layer 'NoSuchLayer'"],
            id="unknown-layer",
        ),
        pytest.param(
            _layer_config(
                1,
                kernel_initializer={"class_name": "GlorotUniform", "config": {}, "module": "os"},
            ),
            ["config.kernel_initializer.module: not allowed in a job spec"],
            id="module-key",
        ),
        pytest.param(
            _layer_config(1, kernel_initializer={"class_name": "system", "config": {}}),
            ["config.kernel_initializer.class_name: 'system' is not an allowed object"],
            id="nested-class-not-allowed",
        ),
        pytest.param(
            _layer_config(
                1,
                kernel_initializer={
                    "class_name": "GlorotUniform",
                    "config": {},
                    "registered_name": "evil>Thing",
                },
            ),
            ["config.kernel_initializer.registered_name: not allowed in a job spec"],
            id="registered-name-key",
        ),
        pytest.param(
            _layer_config(1, activation="os.system"),
            ["config.activation: 'os.system' is not a known activation"],
            id="unknown-activation",
        ),
        pytest.param(
            _set("compile", optimizer="nosuchopt"),
            ["compile.optimizer", "unknown optimizer 'nosuchopt'"],
            id="unknown-optimizer",
        ),
        pytest.param(
            _set("compile", loss="nosuchloss"),
            ["compile.loss", "unknown loss 'nosuchloss'"],
            id="unknown-loss",
        ),
        pytest.param(
            _set("compile", metrics=["nosuchmetric"]),
            ["compile.metrics", "unknown metric 'nosuchmetric'"],
            id="unknown-metric",
        ),
        pytest.param(
            _set("fit", epochs=0),
            ["fit.epochs", "greater than or equal to 1"],
            id="epochs-zero",
        ),
        pytest.param(
            _set("fit", validation_split=1.5),
            ["fit.validation_split", "less than 1"],
            id="validation-split-too-big",
        ),
        pytest.param(
            _set("fit", batch_size=-1),
            ["fit.batch_size", "greater than or equal to 1"],
            id="negative-batch-size",
        ),
        pytest.param(
            lambda s: s.update(fitt={"epochs": 2}),
            ["fitt", "Extra inputs are not permitted"],
            id="unexpected-top-level-key",
        ),
        pytest.param(
            _set("fit", epochs="five"),
            ["fit.epochs", "valid integer"],
            id="wrong-type",
        ),
    ],
)
def test_rejected(change: Callable[[Spec], None], expected: list[str]) -> None:
    with pytest.raises(ValidationError) as caught:
        JobSpec.model_validate(_spec(change))
    message = str(caught.value)
    for part in expected:
        assert part in message


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [("mse", "mean_squared_error"), ("MAE", "mean_absolute_error"), ("kld", "kl_divergence")],
)
def test_loss_aliases_accepted(alias: str, canonical: str) -> None:
    spec = JobSpec.model_validate(_spec(_set("compile", loss=alias)))
    assert spec.compile.loss == canonical


def test_optimizer_object_accepted() -> None:
    optimizer = {"class_name": "Adam", "config": {"learning_rate": 0.01}}
    spec = JobSpec.model_validate(_spec(_set("compile", optimizer=optimizer)))
    assert spec.compile.model_dump(mode="json")["optimizer"] == optimizer


def test_allow_listed_nested_initializer_accepted() -> None:
    init = {"class_name": "GlorotUniform", "config": {"seed": 1}}
    spec = JobSpec.model_validate(_spec(_layer_config(1, kernel_initializer=init)))
    assert spec.model.layers[1].config["kernel_initializer"] == init


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(lambda s: s["dataset"].update(id="0" * 32), "either name", id="name-and-id"),
        pytest.param(lambda s: s["dataset"].update(name=None, id="../etc"), "dataset.id",
                     id="id-not-hex"),
        pytest.param(lambda s: s["model"].update(json={"class_name": "Sequential", "config": {
                         "layers": [{"class_name": "Dense", "config": {"units": 1}}]}}),
                     "either layers", id="layers-and-json"),
        pytest.param(lambda s: s["compile"].update(optimizer={"class_name": "Adam", "config": {
                         "beta_1": {"class_name": "ExponentialDecay", "config": {}}}}),
                     "only learning_rate may be a schedule", id="schedule-elsewhere"),
        pytest.param(lambda s: s["compile"].update(optimizer={"class_name": "Adam", "config": {
                         "learning_rate": {"class_name": "L2", "config": {}}}}),
                     "'L2' is not allowed", id="not-a-schedule"),
        pytest.param(lambda s: s["fit"].update(callbacks=[{"class_name": "ModelCheckpoint"}]),
                     "unknown callback 'ModelCheckpoint'", id="callback-not-allowed"),
        pytest.param(lambda s: s["fit"].update(callbacks=[{"class_name": "LearningRateScheduler",
                                                          "config": {"schedule": "lambda e: 1"}}]),
                     "config.schedule", id="scheduler-with-code"),
        pytest.param(lambda s: s["fit"].update(validation_split=0.0, validation_data={"x": [1]}),
                     "inline arrays", id="inline-x-without-y"),
        pytest.param(lambda s: s["fit"].update(class_weight={"zero": 1.0}), "fit.class_weight",
                     id="class-weight-key"),
        pytest.param(lambda s: s["fit"].update(validation_split=0.0, validation_data={
                         "x": [[0.0]], "y": [0], "sample_weight": "sample_weight"}),
                     "sample_weight", id="inline-validation-weights-by-name"),
        pytest.param(lambda s: s["fit"].update(validation_split=0.0, validation_data={
                         "dataset": {"name": "mnist"}, "split": "test",
                         "sample_weight": "sample_weight"}),
                     "sample_weight", id="test-split-weights-by-name"),
        pytest.param(lambda s: s["fit"].update(max_queue_size=0), "fit.max_queue_size",
                     id="max-queue-size"),
        pytest.param(lambda s: s["compile"].update(steps_per_execution=0),
                     "compile.steps_per_execution", id="steps-per-execution"),
        pytest.param(lambda s: s["compile"].update(loss_weights=[-1.0]), "compile.loss_weights",
                     id="negative-loss-weight"),
    ],
)  # fmt: skip
def test_rejected_new_fields(change: Callable[[Spec], None], expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        JobSpec.model_validate(_spec(change))
    assert expected in str(caught.value)


def test_every_compile_and_fit_argument_validates() -> None:
    spec = _spec(lambda s: s.update(
        compile={
            "optimizer": {"class_name": "SGD", "config": {"momentum": 0.9, "nesterov": True,
                          "learning_rate": {"class_name": "CosineDecay",
                                            "config": {"initial_learning_rate": 0.1,
                                                       "decay_steps": 100}}}},
            "loss": {"class_name": "SparseCategoricalCrossentropy",
                     "config": {"from_logits": True, "reduction": "sum"}},
            "loss_weights": [1.0], "metrics": ["accuracy"], "weighted_metrics": ["accuracy"],
            "run_eagerly": False, "steps_per_execution": 8, "jit_compile": False,
        },
        fit={"epochs": 4, "batch_size": 16, "verbose": 0, "validation_data": "test",
             "shuffle": False, "class_weight": {"0": 2.0}, "sample_weight": None,
             "initial_epoch": 1, "steps_per_epoch": 3, "validation_steps": 2,
             "validation_batch_size": 8, "validation_freq": 2, "workers": 2,
             "use_multiprocessing": False, "max_queue_size": 4,
             "callbacks": [{"class_name": "EarlyStopping", "config": {"patience": 2}},
                           {"class_name": "KeepBest", "config": {"monitor": "val_loss"}}]},
    ))  # fmt: skip
    parsed = JobSpec.model_validate(spec)
    assert parsed.fit.class_weight == {0: 2.0}
    assert parsed.fit.uses_pydataset
    again = JobSpec.model_validate(parsed.model_dump(mode="json"))  # as stored and re-read
    assert again == parsed


def _with_layer(layer: Spec) -> Spec:
    return _spec(lambda s: s["model"]["layers"].insert(1, layer))


def test_preprocessing_with_its_state_in_the_config_is_accepted() -> None:
    normalization = {"class_name": "Normalization", "config": {"mean": 33.3, "variance": 6000.0}}
    spec = JobSpec.model_validate(_with_layer(normalization))
    assert spec.model.layers is not None and spec.model.layers[1].class_name == "Normalization"
    lookup = {"class_name": "IntegerLookup", "config": {"vocabulary": [1, 2]}}
    JobSpec.model_validate(_with_layer(lookup))


def test_a_normalization_left_to_adapt_is_accepted_in_a_layers_list() -> None:
    """The worker adapts it on the training data before fit (tests/worker/test_adapt.py)."""
    spec = JobSpec.model_validate(_with_layer({"class_name": "Normalization"}))
    assert spec.model.layers is not None and spec.model.layers[1].config == {}


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        pytest.param({"class_name": "Normalization", "config": {"variance": 2.0}},
                     "config.mean: Normalization takes its mean and variance together, or "
                     "neither", id="normalization-half"),
        pytest.param({"class_name": "Discretization", "config": {"num_bins": 3}},
                     "config.bin_boundaries: Discretization needs its bin_boundaries",
                     id="discretization"),
        pytest.param({"class_name": "IntegerLookup", "config": {"vocabulary": "/etc/passwd"}},
                     "config.vocabulary: IntegerLookup's vocabulary is a list", id="vocab-path"),
        pytest.param({"class_name": "TimeDistributed", "config": {"layer": {
                         "class_name": "Normalization", "config": {"axis": -1}}}},
                     "config.layer.config.mean: Normalization without its mean and variance "
                     "is adapted on the training data only as a layer of the model itself",
                     id="wrapped"),
    ],
)  # fmt: skip
def test_preprocessing_left_to_adapt_is_refused(layer: Spec, expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        JobSpec.model_validate(_with_layer(layer))
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    "name", ["RandomBrightness", "RandomSaturation", "RandomSharpness", "Solarization"]
)
def test_augmentation_a_job_could_not_save_is_refused_at_submit(name: str) -> None:
    """Keras 3.15 cannot save these layers as .h5, which the end of every job does: a job with
    one would train and then fail, so the spec is refused before it is queued."""
    spec = copy.deepcopy(QUICKSTART)
    spec["model"]["layers"].insert(
        1, {"class_name": name, "config": {"factor": 0.1, "value_range": [0, 1]}}
    )
    with pytest.raises(ValidationError) as refused:
        JobSpec.model_validate(spec)
    assert name in str(refused.value)
