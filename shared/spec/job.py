"""The job spec: what a user submits, validated once at the edge against allow-lists.

Nothing here imports Keras. Every class name a spec may use comes from an allow-list
(``shared/spec/allowlists.py``), and every ``config`` is plain JSON checked so that it cannot name a
module, a function or code: Keras objects are made from it only through those lists.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    StrictInt,
    field_validator,
    model_validator,
)

from shared.spec import model_json
from shared.spec.allowlists import (
    ACTIVATIONS,
    FORBIDDEN_KEYS,
    LAYER_KEYS,
    LAYERS,
    LOSS_ALIASES,
    LOSSES,
    METRIC_CLASSES,
    METRICS,
    NESTED,
    OPTIMIZERS,
    REDUCTIONS,
    SCHEDULES,
)
from shared.spec.fit import (
    CallbackSpec,
    DatasetRef,
    FitSpec,
    ObjectSpec,
    Scalar,
    Strict,
    ValidationData,
    plain,
)

__all__ = [
    "ACTIVATIONS", "LAYERS", "LOSSES", "METRICS", "NESTED", "OPTIMIZERS", "CallbackSpec",
    "DatasetRef", "FitSpec", "JobSpec", "ObjectSpec", "ValidationData",
]  # fmt: skip

_MAX_DEPTH = 8


def _check_value(value: Any, path: str, depth: int = 0) -> None:
    """Refuse anything in a config that is not plain data or an allow-listed nested object."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"{path}: nested too deeply")
    if isinstance(value, dict):
        for key in value:
            if key in FORBIDDEN_KEYS or str(key).startswith("__"):
                raise ValueError(f"{path}.{key}: not allowed in a job spec")
        if "class_name" in value:
            name = value["class_name"]
            layer_slot = path.rsplit(".", 1)[-1] in LAYER_KEYS
            if not isinstance(name, str) or (
                name not in NESTED and not (layer_slot and name in LAYERS)
            ):
                raise ValueError(f"{path}.class_name: {name!r} is not an allowed object here")
            if set(value) - {"class_name", "config"}:
                raise ValueError(f"{path}: a nested object has only class_name and config")
            if layer_slot:
                _check_activations(value.get("config") or {}, f"{path}.config")
                refusal = model_json.adapt_refusal(name, value.get("config") or {})
                if refusal is not None:
                    raise ValueError(f"{path}.config.{refusal[0]}: {refusal[1]}")
        for key, item in value.items():
            _check_value(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_value(item, f"{path}[{i}]", depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{path}: must be a finite number")
    elif not isinstance(value, Scalar):
        raise ValueError(f"{path}: unsupported value")


def _check_activations(config: dict[str, Any], path: str) -> None:
    for key in ("activation", "recurrent_activation"):
        value = config.get(key)
        if value is not None and (not isinstance(value, str) or value not in ACTIVATIONS):
            raise ValueError(
                f"{path}.{key}: {value!r} is not a known activation "
                f"(one of: {', '.join(sorted(ACTIVATIONS))})"
            )


class LayerSpec(Strict):
    """One layer in Keras's class_name/config form."""

    class_name: str
    config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _allowed(self) -> LayerSpec:
        if self.class_name not in LAYERS:
            raise ValueError(
                f"class_name: unknown or disallowed layer {self.class_name!r}; allowed: "
                + ", ".join(sorted(LAYERS))
            )
        _check_value(self.config, "config")
        _check_activations(self.config, "config")
        # a layer of the list itself: a Normalization left to adapt() is adapted by the worker
        refusal = model_json.adapt_refusal(self.class_name, self.config, adaptable=True)
        if refusal is not None:
            raise ValueError(f"config.{refusal[0]}: {refusal[1]}")
        return self


class ModelSpec(Strict):
    """A Sequential model as a list of layers, or a whole model.to_json() document."""

    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, populate_by_name=True, serialize_by_alias=True
    )

    layers: list[LayerSpec] | None = Field(default=None, min_length=1, max_length=200)
    document: Any = Field(default=None, alias="json")

    @field_validator("document")
    @classmethod
    def _document(cls, value: Any) -> Any:
        return None if value is None else model_json.parse(value)

    @model_validator(mode="after")
    def _one(self) -> ModelSpec:
        if (self.layers is None) == (self.document is None):
            raise ValueError("give either layers (a list) or json (a model.to_json() document)")
        return self


def _named(value: str | ObjectSpec, names: dict[str, str], kind: str) -> str | ObjectSpec:
    allowed_classes = set(names.values())
    if isinstance(value, str):
        if value.lower() not in names:
            raise ValueError(f"unknown {kind} {value!r}; allowed: {', '.join(sorted(names))}")
        return value.lower()
    if value.class_name not in allowed_classes:
        raise ValueError(
            f"unknown {kind} class {value.class_name!r}; allowed: "
            + ", ".join(sorted(allowed_classes))
        )
    return value


def _loss(value: str | ObjectSpec) -> str | ObjectSpec:
    if isinstance(value, str):
        value = LOSS_ALIASES.get(value.lower(), value)
    value = _named(value, LOSSES, "loss")
    if isinstance(value, ObjectSpec):
        plain(value, "loss")
        reduction = value.config.get("reduction", "sum_over_batch_size")
        if reduction is not None and reduction not in REDUCTIONS:
            raise ValueError(
                f"config.reduction: {reduction!r} is not a reduction; one of: "
                + ", ".join(sorted(REDUCTIONS))
            )
    return value


def _metric(value: str | ObjectSpec) -> str | ObjectSpec:
    if isinstance(value, str) and value not in METRICS:
        raise ValueError(f"unknown metric {value!r}; allowed: {', '.join(sorted(METRICS))}")
    if isinstance(value, ObjectSpec):
        if value.class_name not in METRIC_CLASSES:
            raise ValueError(f"unknown metric class {value.class_name!r}")
        plain(value, "metric")
    return value


Item = str | ObjectSpec
Metrics = list[Item | list[Item]] | dict[str, Item | list[Item]]


def _metrics(values: Metrics | None) -> Metrics | None:
    groups = values.values() if isinstance(values, dict) else (values or [])
    for group in groups:
        for value in group if isinstance(group, list) else [group]:
            _metric(value)
    return values


class CompileSpec(Strict):
    """The arguments of Model.compile, every one Keras 3 takes."""

    optimizer: Item = "rmsprop"
    loss: Item | list[Item] | dict[str, Item]
    loss_weights: (
        list[Annotated[float, Field(ge=0)]] | dict[str, Annotated[float, Field(ge=0)]] | None
    ) = None
    metrics: Metrics = Field(default_factory=list, max_length=20)
    weighted_metrics: Metrics | None = Field(default=None, max_length=20)
    run_eagerly: bool = False
    # Unset: the service chooses (the training is the same, only faster; docs/spec.md).
    steps_per_execution: Annotated[int, Field(ge=1, le=100_000)] | None = None
    jit_compile: bool | Literal["auto"] = "auto"
    auto_scale_loss: bool = True

    @field_validator("optimizer")
    @classmethod
    def _optimizer(cls, value: Item) -> Item:
        value = _named(value, OPTIMIZERS, "optimizer")
        if isinstance(value, ObjectSpec):
            plain(value, "optimizer", nested=SCHEDULES)
            for key, item in value.config.items():
                if isinstance(item, ObjectSpec) and key != "learning_rate":
                    raise ValueError(f"config.{key}: only learning_rate may be a schedule")
        return value

    @field_validator("loss")
    @classmethod
    def _loss(cls, value: Item | list[Item] | dict[str, Item]) -> Any:
        if isinstance(value, list):
            return [_loss(v) for v in value]
        if isinstance(value, dict):
            return {k: _loss(v) for k, v in value.items()}
        return _loss(value)

    _check_metrics = field_validator("metrics", "weighted_metrics")(
        classmethod(lambda cls, v: _metrics(v))
    )


class Resources(Strict):
    """What a job needs of the worker slot that trains it."""

    gpus: StrictInt = Field(default=0, ge=0, le=16)


class JobSpec(Strict):
    """Everything a training job needs."""

    name: str | None = Field(default=None, max_length=200)
    dataset: DatasetRef
    model: ModelSpec
    compile: CompileSpec
    fit: FitSpec = Field(default_factory=FitSpec)
    seed: StrictInt | None = Field(default=None, ge=0, le=2**31 - 1)
    priority: StrictInt = Field(default=0, ge=-100, le=100)
    # Seconds of training before the job ends failed ("timeout"); capped by TRAINQ_MAX_JOB_SECONDS.
    time_limit_seconds: StrictInt | None = Field(default=None, ge=1)
    # Handed only to a worker slot that owns this many GPUs (TRAINQ_GPUS on the worker host).
    resources: Resources = Field(default_factory=Resources)

    def dataset_ids(self) -> set[str]:
        """The uploaded datasets this job reads."""
        refs = [self.dataset]
        vd = self.fit.validation_data
        if isinstance(vd, ValidationData) and vd.dataset is not None:
            refs.append(vd.dataset)
        return {r.id for r in refs if r.id is not None}
