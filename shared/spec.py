"""The job spec: what a user submits, validated once at the edge against allow-lists.

Nothing here imports Keras. Every class name a spec may use comes from an allow-list, and
every ``config`` is plain JSON checked so that it cannot name a module, a function or code:
the worker turns it into Keras objects only through those lists.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

# Layers whose config is plain numbers, strings and nested allow-listed objects.
LAYERS = frozenset(
    {
        "Activation", "ActivityRegularization", "AlphaDropout", "AveragePooling1D",
        "AveragePooling2D", "AveragePooling3D", "BatchNormalization", "Conv1D", "Conv1DTranspose",
        "Conv2D", "Conv2DTranspose", "Conv3D", "Conv3DTranspose", "Cropping1D", "Cropping2D",
        "Dense", "DepthwiseConv2D", "Dropout", "ELU", "Embedding", "Flatten",
        "GaussianDropout", "GaussianNoise", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
        "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GRU", "GroupNormalization",
        "LayerNormalization",
        "LeakyReLU", "LSTM", "Masking", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "Permute",
        "PReLU", "ReLU", "RepeatVector", "Rescaling", "Reshape", "SeparableConv1D",
        "SeparableConv2D", "SimpleRNN", "Softmax", "SpatialDropout1D", "SpatialDropout2D",
        "SpatialDropout3D", "UnitNormalization", "UpSampling1D", "UpSampling2D", "ZeroPadding1D",
        "ZeroPadding2D",
    }
)  # fmt: skip

# Objects that may appear nested inside a layer config as {"class_name": ..., "config": {...}}.
NESTED = frozenset(
    {
        # initializers
        "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity",
        "LecunNormal", "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform",
        "TruncatedNormal", "VarianceScaling", "Zeros",
        # regularizers and constraints
        "L1", "L2", "L1L2", "OrthogonalRegularizer", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm",
        # dtype policies, as Keras writes them into layer configs
        "DTypePolicy",
    }
)  # fmt: skip

ACTIVATIONS = frozenset(
    {
        "celu", "elu", "exponential", "gelu", "glu", "hard_sigmoid", "hard_silu", "hard_swish",
        "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish", "relu", "relu6", "selu",
        "sigmoid", "silu", "softmax", "softplus", "softsign", "sparse_plus", "sparsemax",
        "squareplus", "swish", "tanh", "tanh_shrink",
    }
)  # fmt: skip

OPTIMIZERS = {
    "adadelta": "Adadelta", "adafactor": "Adafactor", "adagrad": "Adagrad", "adam": "Adam",
    "adamax": "Adamax", "adamw": "AdamW", "ftrl": "Ftrl", "lion": "Lion", "nadam": "Nadam",
    "rmsprop": "RMSprop", "sgd": "SGD",
}  # fmt: skip

LOSSES = {
    "binary_crossentropy": "BinaryCrossentropy",
    "binary_focal_crossentropy": "BinaryFocalCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "categorical_focal_crossentropy": "CategoricalFocalCrossentropy",
    "categorical_hinge": "CategoricalHinge", "cosine_similarity": "CosineSimilarity",
    "hinge": "Hinge", "huber": "Huber", "kl_divergence": "KLDivergence", "log_cosh": "LogCosh",
    "mean_absolute_error": "MeanAbsoluteError",
    "mean_absolute_percentage_error": "MeanAbsolutePercentageError",
    "mean_squared_error": "MeanSquaredError",
    "mean_squared_logarithmic_error": "MeanSquaredLogarithmicError",
    "poisson": "Poisson", "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "squared_hinge": "SquaredHinge",
}  # fmt: skip
LOSS_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error",
                "mape": "mean_absolute_percentage_error", "msle": "mean_squared_logarithmic_error",
                "kld": "kl_divergence", "logcosh": "log_cosh"}  # fmt: skip

METRICS = frozenset(
    {
        "accuracy", "acc", "binary_accuracy", "categorical_accuracy",
        "sparse_categorical_accuracy", "top_k_categorical_accuracy",
        "sparse_top_k_categorical_accuracy", "mse", "mae", "mape", "msle", "mean_squared_error",
        "mean_absolute_error", "mean_absolute_percentage_error", "mean_squared_logarithmic_error",
        "root_mean_squared_error", "auc", "precision", "recall", "crossentropy",
        "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
        "kl_divergence", "poisson", "cosine_similarity", "log_cosh_error", "hinge",
        "squared_hinge", "categorical_hinge", "r2_score",
    }
)  # fmt: skip
METRIC_CLASSES = frozenset(
    {
        "Accuracy", "AUC", "BinaryAccuracy", "CategoricalAccuracy", "MeanAbsoluteError",
        "MeanSquaredError", "Precision", "Recall", "RootMeanSquaredError",
        "SparseCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "TopKCategoricalAccuracy",
        "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
        "R2Score", "F1Score", "FBetaScore",
    }
)  # fmt: skip

# Keys that could make a Keras deserializer import a module or rebuild code.
_FORBIDDEN_KEYS = frozenset({"module", "registered_name", "function", "function_type",
                             "custom_objects", "__lambda__", "__bytes__", "code"})  # fmt: skip
_MAX_DEPTH = 8

Scalar = str | int | float | bool | None


def _check_value(value: Any, path: str, depth: int = 0) -> None:
    """Refuse anything in a config that is not plain data or an allow-listed nested object."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"{path}: nested too deeply")
    if isinstance(value, dict):
        for key in value:
            if key in _FORBIDDEN_KEYS or str(key).startswith("__"):
                raise ValueError(f"{path}.{key}: not allowed in a job spec")
        if "class_name" in value:
            name = value["class_name"]
            if name not in NESTED:
                raise ValueError(f"{path}.class_name: {name!r} is not an allowed object here")
            if set(value) - {"class_name", "config"}:
                raise ValueError(f"{path}: a nested object has only class_name and config")
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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class LayerSpec(_Strict):
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
        return self


class ModelSpec(_Strict):
    """A Sequential model as a list of layers."""

    layers: list[LayerSpec] = Field(min_length=1, max_length=200)


class ObjectSpec(_Strict):
    """A Keras object by class name with a plain config, e.g. a loss with from_logits."""

    class_name: str
    config: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)


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


class CompileSpec(_Strict):
    """The arguments of Model.compile."""

    optimizer: str | ObjectSpec = "rmsprop"
    loss: str | ObjectSpec
    metrics: list[str | ObjectSpec] = Field(default_factory=list, max_length=20)

    @field_validator("optimizer")
    @classmethod
    def _optimizer(cls, value: str | ObjectSpec) -> str | ObjectSpec:
        return _named(value, OPTIMIZERS, "optimizer")

    @field_validator("loss")
    @classmethod
    def _loss(cls, value: str | ObjectSpec) -> str | ObjectSpec:
        if isinstance(value, str):
            value = LOSS_ALIASES.get(value.lower(), value)
        return _named(value, LOSSES, "loss")

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, values: list[str | ObjectSpec]) -> list[str | ObjectSpec]:
        for value in values:
            if isinstance(value, str) and value not in METRICS:
                raise ValueError(f"unknown metric {value!r}; allowed: {', '.join(sorted(METRICS))}")
            if isinstance(value, ObjectSpec) and value.class_name not in METRIC_CLASSES:
                raise ValueError(f"unknown metric class {value.class_name!r}")
        return values


class FitSpec(_Strict):
    """The arguments of Model.fit."""

    epochs: Annotated[int, Field(ge=1)] = 1
    batch_size: Annotated[int, Field(ge=1, le=65536)] = 32
    validation_split: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    shuffle: bool = True
    verbose: Literal["auto", 0, 1, 2] = "auto"


class DatasetRef(_Strict):
    """A dataset by name, and the factor its inputs are divided by (255 for pixels)."""

    name: str = Field(min_length=1, max_length=100)
    scale: Annotated[float, Field(gt=0)] = 1.0


class JobSpec(_Strict):
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
