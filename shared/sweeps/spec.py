"""A sweep as submitted: a base job spec, a search space over its fields by path, an objective,
a sampler, a pruner and how many trials; checked here before anything is recorded.

A path names a field of the base spec the way people write it: ``fit.batch_size``,
``compile.optimizer.config.learning_rate``, ``model.layers[1].config.units``. Every part but
the last must exist in the base spec; the last may be new in an existing object (a ``fit``
argument left at its default).
"""

from __future__ import annotations

import copy
import math
import re
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt, model_validator

from shared.spec.fit import Scalar, Strict

Part = str | int
_PART = re.compile(r"(?P<key>[A-Za-z_][A-Za-z0-9_]*)|\[(?P<index>\d{1,6})\]")
_STEP = r"[A-Za-z_][A-Za-z0-9_]*(?:\[\d{1,6}\])*"
_PATH = re.compile(rf"{_STEP}(?:\.{_STEP})*")
MAX_DIMENSIONS = 32
MAX_CHOICES = 1000
MAX_GRID = 100_000
Number = StrictInt | float


def parse_path(path: str) -> list[Part]:
    """``model.layers[1].config.units`` as ["model", "layers", 1, "config", "units"]."""
    if not _PATH.fullmatch(path):
        raise ValueError(
            f"{path[:200]!r} is not a spec path: write keys with dots and list items with [i], "
            "e.g. model.layers[1].config.units"
        )
    return [m["key"] if m["key"] is not None else int(m["index"]) for m in _PART.finditer(path)]


def _show(parts: list[Part]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def reach(spec: dict[str, Any], path: str) -> tuple[Any, Part]:
    """The container in ``spec`` that holds the path's last part, and that part; ValueError
    naming the first part that does not exist."""
    parts = parse_path(path)
    node: Any = spec
    for i, part in enumerate(parts[:-1]):
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise ValueError(f"{_show(parts[: i + 1])} is not in the spec")
        elif not isinstance(node, dict) or part not in node:
            raise ValueError(f"{_show(parts[: i + 1])} is not in the spec")
        node = node[part]
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ValueError(f"{path} is not in the spec")
    elif not isinstance(node, dict):
        where = _show(parts[:-1])
        if isinstance(node, str) and where == "model.json":
            raise ValueError(
                f"{path}: model.json is a document in a string; give the model as "
                "model.layers to search its fields"
            )
        raise ValueError(f"{path}: {where} is not an object")
    return node, last


def with_values(spec: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A copy of the spec with each path set to its value."""
    out = copy.deepcopy(spec)
    for path, value in values.items():
        node, last = reach(out, path)
        node[last] = value
    return out


class FloatParam(Strict):
    """A float between low and high (log-uniform with log), optionally in steps."""

    type: Literal["float"]
    low: Number
    high: Number
    log: StrictBool = False
    step: Number | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _range(self) -> FloatParam:
        _check_range(self.low, self.high, self.log, self.step)
        return self


class IntParam(Strict):
    """An integer from low to high inclusive (log-uniform with log), in steps of step."""

    type: Literal["int"]
    low: StrictInt
    high: StrictInt
    log: StrictBool = False
    step: StrictInt = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _range(self) -> IntParam:
        _check_range(self.low, self.high, self.log, self.step if self.step != 1 else None)
        return self


class CategoricalParam(Strict):
    """One of the given values (numbers, strings, booleans or null)."""

    type: Literal["categorical"]
    choices: list[Any] = Field(min_length=1, max_length=MAX_CHOICES)

    @model_validator(mode="after")
    def _distinct(self) -> CategoricalParam:
        for i, choice in enumerate(self.choices):
            if not isinstance(choice, Scalar) or (
                isinstance(choice, float) and not math.isfinite(choice)
            ):
                raise ValueError(
                    f"choices[{i}]: a choice is a number, a string, true, false or null "
                    f"(got {type(choice).__name__})"
                )
        seen = [repr((type(c).__name__, c)) for c in self.choices]
        if len(set(seen)) != len(seen):
            raise ValueError("choices: each value once")
        return self


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("low and high must be finite numbers")
    if low >= high:
        raise ValueError(f"empty or inverted range: low {low} must be below high {high}")
    if log and low <= 0:
        raise ValueError(f"a log range must stay above 0: low is {low}")
    if log and step is not None:
        raise ValueError("give log or step, not both")
    if step is not None and step > high - low:
        raise ValueError(f"step {step} is wider than the range {low}..{high}")


Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


class Objective(Strict):
    """The recorded metric a trial is judged by (its value at the trial's last epoch)."""

    metric: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    direction: Literal["minimize", "maximize"] = "minimize"


class NoPruner(Strict):
    """Every trial runs to its end."""

    type: Literal["none"]


class MedianPruner(Strict):
    """Stops a trial whose objective after an epoch is worse than the median of the finished
    trials' at the same epoch (Optuna's MedianPruner)."""

    type: Literal["median"]
    n_startup_trials: StrictInt = Field(default=5, ge=0, le=10_000)
    n_warmup_steps: StrictInt = Field(default=0, ge=0, le=10_000)
    interval_steps: StrictInt = Field(default=1, ge=1, le=10_000)
    n_min_trials: StrictInt = Field(default=1, ge=1, le=10_000)


class SuccessiveHalvingPruner(Strict):
    """Asynchronous successive halving (ASHA; Optuna's SuccessiveHalvingPruner): at each rung,
    only the best 1/reduction_factor of the trials that reached it go on."""

    type: Literal["successive_halving"]
    min_resource: StrictInt | Literal["auto"] = "auto"
    reduction_factor: StrictInt = Field(default=4, ge=2, le=100)
    min_early_stopping_rate: StrictInt = Field(default=0, ge=0, le=100)

    @model_validator(mode="after")
    def _resource(self) -> SuccessiveHalvingPruner:
        if isinstance(self.min_resource, int) and self.min_resource < 1:
            raise ValueError("min_resource: at least 1 epoch, or 'auto'")
        return self


Pruner = Annotated[NoPruner | MedianPruner | SuccessiveHalvingPruner, Field(discriminator="type")]


class SweepSpec(Strict):
    """What ``POST /api/v1/sweeps`` takes."""

    name: str | None = Field(default=None, max_length=200)
    spec: dict[str, Any] = Field(
        description="the base job spec (a JobSpec) every trial starts from"
    )
    space: dict[str, Param] = Field(
        min_length=1,
        max_length=MAX_DIMENSIONS,
        description="spec path -> what to try there, e.g. "
        '{"compile.optimizer.config.learning_rate": {"type": "float", "low": 1e-4, '
        '"high": 1e-1, "log": true}}',
    )
    objective: Objective
    sampler: Literal["random", "grid", "tpe"] = "tpe"
    pruner: Pruner = Field(default_factory=lambda: NoPruner(type="none"))
    max_trials: StrictInt = Field(ge=1, le=100_000)
    max_concurrent: StrictInt = Field(default=2, ge=1, le=1000)
    seed: StrictInt | None = Field(
        default=None, ge=0, le=2**32 - 1, description="the sampler's seed (random if not given)"
    )


def problems(sweep: SweepSpec, base: dict[str, Any]) -> list[tuple[str, str]]:
    """What is wrong with a sweep's paths against its base spec, as (field, message): a path
    that is not a spec path or not in the spec, the trial's name searched, a grid without one."""
    found: list[tuple[str, str]] = []
    for path in sweep.space:
        field = f"space.{path}"
        try:
            parse_path(path)
            if path.split(".", 1)[0].split("[", 1)[0] in ("name", "priority"):
                raise ValueError(f"{path} is the trial's own, not a field to search")
            reach(base, path)
        except ValueError as exc:
            found.append((field, str(exc)))
    if sweep.sampler == "grid" and not found:
        size = 1
        for path, param in sweep.space.items():
            try:
                size *= len(grid_values(path, param))
            except ValueError as exc:
                found.append((f"space.{path}", str(exc)))
                break
            if size > MAX_GRID:
                found.append((f"space.{path}", f"the grid has more than {MAX_GRID} points"))
                break
    return found


def grid_values(path: str, param: FloatParam | IntParam | CategoricalParam) -> list[Any]:
    """The values a grid tries on one path; a float without a step has no grid."""
    if isinstance(param, CategoricalParam):
        return list(param.choices)
    if isinstance(param, FloatParam) and param.step is None:
        raise ValueError(
            "the grid sampler needs a step for a float range (or use the random or tpe sampler)"
        )
    step = param.step if param.step is not None else 1
    count = math.floor((param.high - param.low) / step + 1e-9) + 1
    if count > MAX_GRID:
        raise ValueError(f"more than {MAX_GRID} grid values")
    if isinstance(param, IntParam):
        return [param.low + i * param.step for i in range(count)]
    return [round(param.low + i * step, 12) for i in range(count)]


def corners(space: dict[str, FloatParam | IntParam | CategoricalParam]) -> dict[str, list[Any]]:
    """Each path's extreme values: the ends of a range, or every choice (the first and last
    of a long list)."""
    out: dict[str, list[Any]] = {}
    for path, param in space.items():
        if isinstance(param, CategoricalParam):
            choices = param.choices
            out[path] = list(choices) if len(choices) <= 4 else [choices[0], choices[-1]]
        elif isinstance(param, IntParam):
            top = param.low + ((param.high - param.low) // param.step) * param.step
            out[path] = [param.low, top]
        else:
            out[path] = [float(param.low), float(param.high)]
    return out
