"""Optuna as the sampler and the pruner, over the trials trainq's database records.

Nothing of Optuna's is kept: each time a trial is asked for, or a trial's epoch is judged, an
in-memory study is rebuilt from the sweep's recorded trials (their values, their objective
after each epoch, and what Optuna noted of them, its system attributes: a grid point, a rung
reached). The database stays the one truth about trials, so a crash or a restart of any
process leaves nothing for Optuna to forget, and Optuna adds no tables of its own.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState, create_trial

from shared.sweeps.spec import (
    CategoricalParam,
    FloatParam,
    IntParam,
    MedianPruner,
    SuccessiveHalvingPruner,
    SweepSpec,
    grid_values,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
log = logging.getLogger(__name__)


@dataclass
class TrialRecord:
    """One trial as the database records it."""

    number: int
    params: dict[str, Any]
    state: str  # running | complete | pruned | fail
    value: float | None = None
    intermediate: dict[int, float] = field(default_factory=dict)  # epoch (1-based) -> objective
    attrs: dict[str, Any] = field(default_factory=dict)


def distributions(sweep: SweepSpec) -> dict[str, BaseDistribution]:
    """The search space as Optuna's distributions."""
    out: dict[str, BaseDistribution] = {}
    for path, param in sweep.space.items():
        if isinstance(param, CategoricalParam):
            out[path] = CategoricalDistribution(param.choices)
        elif isinstance(param, IntParam):
            out[path] = IntDistribution(param.low, param.high, log=param.log, step=param.step)
        else:
            assert isinstance(param, FloatParam)
            out[path] = FloatDistribution(
                float(param.low), float(param.high), log=param.log,
                step=float(param.step) if param.step is not None else None,
            )  # fmt: skip
    return out


def grid_size(sweep: SweepSpec) -> int | None:
    """How many points a grid sweep has (None for the other samplers)."""
    if sweep.sampler != "grid":
        return None
    size = 1
    for path, param in sweep.space.items():
        size *= len(grid_values(path, param))
    return size


def seed_of(sweep: SweepSpec, sweep_id: str, number: int) -> int:
    """The sampler's seed for one trial: the sweep's seed (or its id's) and the trial number,
    so that a study rebuilt for each trial does not draw the same values again."""
    base = sweep.seed if sweep.seed is not None else sweep_id
    digest = hashlib.sha256(f"{base}:{number}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _sampler(sweep: SweepSpec, seed: int) -> optuna.samplers.BaseSampler:
    if sweep.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sweep.sampler == "grid":
        space = {path: grid_values(path, p) for path, p in sweep.space.items()}
        return optuna.samplers.GridSampler(space, seed=seed)
    # Trials run side by side: the constant liar keeps TPE from proposing what a running
    # trial already tries.
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def _pruner(sweep: SweepSpec) -> optuna.pruners.BasePruner:
    p = sweep.pruner
    if isinstance(p, MedianPruner):
        return optuna.pruners.MedianPruner(
            n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps,
            interval_steps=p.interval_steps, n_min_trials=p.n_min_trials,
        )  # fmt: skip
    if isinstance(p, SuccessiveHalvingPruner):
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=p.min_resource, reduction_factor=p.reduction_factor,
            min_early_stopping_rate=p.min_early_stopping_rate,
        )  # fmt: skip
    return optuna.pruners.NopPruner()


_STATES = {
    "running": TrialState.RUNNING,
    "complete": TrialState.COMPLETE,
    "pruned": TrialState.PRUNED,
    "fail": TrialState.FAIL,
}


def _frozen(record: TrialRecord, dists: dict[str, BaseDistribution]) -> FrozenTrial:
    state = _STATES[record.state]
    known = {k: v for k, v in record.params.items() if k in dists}
    return create_trial(
        state=state,
        value=record.value if state == TrialState.COMPLETE else None,
        params=known,
        distributions={k: dists[k] for k in known},
        intermediate_values=dict(record.intermediate),
        system_attrs=dict(record.attrs),
    )


def study(sweep: SweepSpec, trials: list[TrialRecord], seed: int = 0) -> optuna.study.Study:
    """An in-memory study holding the recorded trials, in their order."""
    made = optuna.create_study(
        direction=sweep.objective.direction, sampler=_sampler(sweep, seed), pruner=_pruner(sweep)
    )
    dists = distributions(sweep)
    for record in sorted(trials, key=lambda t: t.number):
        made.add_trial(_frozen(record, dists))
    return made


def ask(
    sweep: SweepSpec, sweep_id: str, trials: list[TrialRecord]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The next trial's values (path -> value) and what the sampler noted of it."""
    # A grid's points are numbered by its seed: one seed for the whole sweep (the points
    # already taken are noted in the trials' attributes, so no point is drawn twice).
    number = 0 if sweep.sampler == "grid" else len(trials)
    made = study(sweep, trials, seed_of(sweep, sweep_id, number))
    trial = made.ask(distributions(sweep))
    attrs = made._storage.get_trial_system_attrs(trial._trial_id)
    return dict(trial.params), _plain(attrs)


def should_prune(
    sweep: SweepSpec, trials: list[TrialRecord], current: TrialRecord
) -> tuple[bool, dict[str, Any]]:
    """Whether the pruner stops the running trial ``current`` after its latest epoch, and the
    trial's system attributes afterwards (a pruner notes the rungs it reached)."""
    running = TrialRecord(
        current.number, current.params, "running", None, current.intermediate, current.attrs
    )
    ordered = sorted(
        [t for t in trials if t.number != current.number] + [running], key=lambda t: t.number
    )
    made = study(sweep, ordered)
    # The study numbers the trials 0, 1, ... in the order they were added.
    frozen = made.get_trials(deepcopy=False)[ordered.index(running)]
    decision = bool(made.pruner.prune(made, frozen))
    attrs = made._storage.get_trial_system_attrs(frozen._trial_id)
    return decision, _plain(attrs)


def _plain(attrs: dict[str, Any]) -> dict[str, Any]:
    """System attributes as JSON keeps them (Optuna's are plain data already)."""
    return {str(k): v for k, v in attrs.items()}
