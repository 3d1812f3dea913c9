"""The fit part of the job spec, and the pieces every part shares. Nothing here imports Keras."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from shared.spec.allowlists import CALLBACKS, SCHEDULES

Scalar = str | int | float | bool | None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ObjectSpec(Strict):
    """A Keras object by class name with a plain config, e.g. a loss with from_logits."""

    class_name: str
    config: dict[str, Scalar | list[Scalar] | ObjectSpec] = Field(default_factory=dict)


def plain(value: ObjectSpec, kind: str, nested: frozenset[str] = frozenset()) -> None:
    for key, item in value.config.items():
        if isinstance(item, ObjectSpec):
            if item.class_name not in nested:
                raise ValueError(f"config.{key}: {item.class_name!r} is not allowed in a {kind}")
            plain(item, kind)


class CallbackSpec(Strict):
    """An allow-listed callback; LearningRateScheduler takes a declarative schedule."""

    class_name: str
    config: dict[str, Scalar | list[Scalar] | ObjectSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _allowed(self) -> CallbackSpec:
        if self.class_name not in CALLBACKS:
            raise ValueError(
                f"class_name: unknown callback {self.class_name!r}; allowed: "
                + ", ".join(sorted(CALLBACKS))
            )
        schedule = self.config.get("schedule")
        if self.class_name == "LearningRateScheduler":
            ok = isinstance(schedule, ObjectSpec) and schedule.class_name in SCHEDULES
            ok = ok or (
                isinstance(schedule, list)
                and bool(schedule)
                and all(isinstance(v, int | float) and v > 0 for v in schedule)
            )
            if not ok:
                raise ValueError(
                    "config.schedule: a list of learning rates, one per epoch, or a schedule "
                    f"object ({', '.join(sorted(SCHEDULES))}) evaluated at the epoch number"
                )
            if isinstance(schedule, ObjectSpec):
                plain(schedule, "schedule")
        for key, item in self.config.items():
            if isinstance(item, ObjectSpec) and key != "schedule":
                raise ValueError(f"config.{key}: must be a plain value")
        return self


class DatasetRef(Strict):
    """A built-in dataset by name or an uploaded one by id; scale divides its inputs."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    scale: Annotated[float, Field(gt=0)] = 1.0

    @model_validator(mode="after")
    def _one(self) -> DatasetRef:
        if (self.name is None) == (self.id is None):
            raise ValueError("give either name (a built-in dataset) or id (an uploaded one)")
        return self

    @property
    def label(self) -> str:
        """How the dataset is named in messages."""
        return self.name or f"upload {self.id}"


Numbers = list[Any]


class ValidationData(Strict):
    """validation_data: another dataset (one of its splits), or small arrays inline; weighted
    by inline weights, or (another dataset's training split) by one of its weight arrays."""

    dataset: DatasetRef | None = None
    split: Literal["train", "test"] = "train"
    x: Numbers | dict[str, Numbers] | None = None
    y: Numbers | dict[str, Numbers] | None = None
    sample_weight: list[float] | str | None = None

    @model_validator(mode="after")
    def _one(self) -> ValidationData:
        inline = self.x is not None or self.y is not None
        if (self.dataset is None) == (not inline) or (
            inline and (self.x is None or self.y is None)
        ):
            raise ValueError('give either dataset, or inline arrays "x" and "y"')
        if isinstance(self.sample_weight, str) and (inline or self.split != "train"):
            raise ValueError(
                "sample_weight: the name of a sample_weight[.NAME] array of the dataset, for "
                "its training split; inline arrays take a list of weights"
            )
        return self


class FitSpec(Strict):
    """The arguments of Model.fit, every one Keras 3 takes, and the three it moved to PyDataset."""

    epochs: Annotated[int, Field(ge=1)] = 1
    batch_size: Annotated[int, Field(ge=1, le=65536)] = 32
    verbose: Literal["auto", 0, 1, 2] = "auto"
    callbacks: list[CallbackSpec] = Field(default_factory=list, max_length=10)
    validation_split: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    validation_data: Literal["test"] | ValidationData | None = None
    shuffle: bool = True
    class_weight: dict[int, Annotated[float, Field(ge=0)]] | None = None
    sample_weight: list[Annotated[float, Field(ge=0)]] | str | None = None
    initial_epoch: Annotated[int, Field(ge=0)] = 0
    steps_per_epoch: Annotated[int, Field(ge=1)] | None = None
    validation_steps: Annotated[int, Field(ge=1)] | None = None
    validation_batch_size: Annotated[int, Field(ge=1, le=65536)] | None = None
    validation_freq: Annotated[int, Field(ge=1)] = 1
    workers: Annotated[int, Field(ge=1, le=16)] | None = None
    use_multiprocessing: bool | None = None
    max_queue_size: Annotated[int, Field(ge=1, le=1000)] | None = None

    @field_validator("initial_epoch")
    @classmethod
    def _initial_epoch(cls, value: int, info: ValidationInfo) -> int:
        epochs = info.data.get("epochs")
        if epochs is not None and value >= epochs:
            raise ValueError(
                f"{value} must be below epochs ({epochs}); "
                "training runs epochs initial_epoch+1 to epochs"
            )
        return value

    @field_validator("validation_data")
    @classmethod
    def _one_validation(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and info.data.get("validation_split"):
            raise ValueError("give validation_split or validation_data, not both")
        return value

    @property
    def uses_pydataset(self) -> bool:
        """Whether workers, use_multiprocessing or max_queue_size were given."""
        return any(
            v is not None for v in (self.workers, self.use_multiprocessing, self.max_queue_size)
        )
