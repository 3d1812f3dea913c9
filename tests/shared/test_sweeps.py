"""The sweep engine and its transactions without a worker: Optuna rebuilt from the recorded
trials decides the same way a study kept in memory would, and the database keeps each trial
number once however many processes advance a sweep."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from typing import Any

import optuna
import pytest
from sqlalchemy import select

from shared.commands.database import migrate
from shared.db import session_scope, sessions
from shared.models import Job, JobStatus, Sweep
from shared.settings import Settings
from shared.sweeps import engine, service
from shared.sweeps.engine import TrialRecord
from shared.sweeps.spec import SweepSpec, parse_path, reach, with_values
from tests.conftest import make_user
from tests.support import ROOT, postgres_database

EXAMPLE: dict[str, Any] = json.loads((ROOT / "examples" / "sweep.json").read_text())


def sweep(**changes: Any) -> SweepSpec:
    body = copy.deepcopy(EXAMPLE)
    body.update(changes)
    return SweepSpec.model_validate(body)


def test_paths_name_fields_as_people_write_them() -> None:
    assert parse_path("model.layers[1].config.units") == ["model", "layers", 1, "config", "units"]
    spec = EXAMPLE["spec"]
    changed = with_values(spec, {"model.layers[1].config.units": 64, "fit.shuffle": False})
    assert changed["model"]["layers"][1]["config"]["units"] == 64
    assert changed["fit"]["shuffle"] is False  # a new key in an existing object
    assert spec["model"]["layers"][1]["config"]["units"] == 128  # the base is untouched
    for bad, says in [("model.layers[4].config", "model.layers[4]"), ("fit.x.y", "fit.x"),
                      ("model.layers.units", "not an object")]:  # fmt: skip
        with pytest.raises(ValueError, match=says.replace("[", r"\[").replace("]", r"\]")):
            reach(spec, bad)
    for bad in ("", "[1]", "a..b", "a.[1]", "a b", "1a"):
        with pytest.raises(ValueError):
            parse_path(bad)


def test_a_rebuilt_study_asks_as_a_kept_one_would_not_repeating_itself() -> None:
    s = sweep(sampler="random", seed=7)
    records: list[TrialRecord] = []
    for number in range(6):
        params, attrs = engine.ask(s, "sweep", records)
        assert (params, attrs) == engine.ask(s, "sweep", records)  # rebuilt: the same answer
        records.append(TrialRecord(number, params, "complete", float(number), {1: 1.0}, attrs))
    assert len({json.dumps(r.params, sort_keys=True) for r in records}) == 6
    lr = EXAMPLE["space"]["compile.optimizer.config.learning_rate"]
    assert all(lr["low"] <= r.params["compile.optimizer.config.learning_rate"] <= lr["high"]
               for r in records)  # fmt: skip


def test_tpe_learns_from_the_recorded_values() -> None:
    """With a clear winner among the recorded trials, TPE's proposals crowd around it."""
    s = sweep(space={"fit.batch_size": {"type": "int", "low": 1, "high": 100}}, seed=3,
              objective={"metric": "val_loss", "direction": "minimize"})  # fmt: skip
    records = [
        TrialRecord(n, {"fit.batch_size": b}, "complete", abs(b - 80) / 10.0)
        for n, b in enumerate([5, 15, 25, 35, 45, 55, 65, 75, 85, 95, 10, 30])
    ]
    asked = []
    for _ in range(8):
        params, attrs = engine.ask(s, "sweep", records)
        asked.append(params["fit.batch_size"])
        b = params["fit.batch_size"]
        records.append(TrialRecord(len(records), params, "complete", abs(b - 80) / 10.0,
                                   attrs=attrs))  # fmt: skip
    assert sorted(abs(b - 80) for b in asked)[4] < 25, asked  # most of them near 80


def test_successive_halving_keeps_its_rungs_in_the_trials_attributes() -> None:
    s = sweep(pruner={"type": "successive_halving", "min_resource": 1, "reduction_factor": 2},
              objective={"metric": "val_loss", "direction": "minimize"})  # fmt: skip
    records: list[TrialRecord] = []
    for number, loss in enumerate([0.3, 0.4, 0.5]):
        current = TrialRecord(number, {}, "running", None, {1: loss})
        _, attrs = engine.should_prune(s, records, current)
        assert "completed_rung_0" in attrs  # noted, then kept with the trial
        records.append(TrialRecord(number, {}, "complete", loss, {1: loss}, attrs))
    worse = TrialRecord(3, {}, "running", None, {1: 2.0})
    assert engine.should_prune(s, records, worse)[0] is True
    better = TrialRecord(4, {}, "running", None, {1: 0.1})
    assert engine.should_prune(s, records, better)[0] is False
    # Without the rungs the trials noted, successive halving would have nobody to compare to.
    forgetful = [TrialRecord(r.number, {}, "complete", r.value, r.intermediate) for r in records]
    assert engine.should_prune(s, forgetful, worse)[0] is False


def test_median_pruning_matches_a_study_kept_in_memory() -> None:
    s = sweep(pruner={"type": "median", "n_startup_trials": 2},
              objective={"metric": "val_loss", "direction": "minimize"})  # fmt: skip
    kept = optuna.create_study(direction="minimize", pruner=optuna.pruners.MedianPruner(2))
    records: list[TrialRecord] = []
    curves = [[0.5, 0.4, 0.3], [0.6, 0.5, 0.4], [0.9, 0.9, 0.9], [0.55, 0.45, 0.35]]
    for number, curve in enumerate(curves):
        trial = kept.ask()
        mine: dict[int, float] = {}
        for epoch, value in enumerate(curve, start=1):
            trial.report(value, epoch)
            mine[epoch] = value
            ours, _ = engine.should_prune(s, records, TrialRecord(number, {}, "running", None,
                                                                  dict(mine)))  # fmt: skip
            assert ours == trial.should_prune(), (number, epoch)
            if ours:
                break
        state = "pruned" if ours else "complete"
        kept.tell(trial, None if ours else curve[-1],
                  optuna.trial.TrialState.PRUNED if ours else None)  # fmt: skip
        records.append(TrialRecord(number, {}, state, None if ours else curve[-1], mine))
    assert [r.state for r in records] == ["complete", "complete", "pruned", "complete"]


@pytest.fixture
def pg() -> Iterator[str]:
    with postgres_database() as url:
        migrate(url)
        yield url


@pytest.mark.postgres
def test_processes_advancing_one_sweep_at_once_add_each_trial_once(pg: str, redis_url: str) -> None:
    settings = Settings(database_url=pg, redis_url=redis_url)
    make_user(pg, "alice")
    body = sweep(max_trials=40, max_concurrent=3)
    with session_scope(pg) as s:
        from shared.models import User

        owner = s.scalars(select(User)).one()
        row = service.create(s, owner, body, settings)
        sweep_id = row.id
    db = sessions(pg)
    with session_scope(pg) as s:  # two trials end: room for two more
        for job in s.scalars(select(Job).where(Job.sweep_id == sweep_id, Job.trial < 2)):
            job.status = JobStatus.failed
    barrier = threading.Barrier(6)

    def advance() -> None:
        barrier.wait()
        service.advance(db, settings, sweep_id)

    threads = [threading.Thread(target=advance) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with session_scope(pg) as s:
        trials = sorted(s.scalars(select(Job.trial).where(Job.sweep_id == sweep_id)))
        active = s.scalars(select(Job).where(Job.sweep_id == sweep_id,
                                             Job.status == JobStatus.queued)).all()  # fmt: skip
        assert s.get(Sweep, sweep_id) is not None
    assert trials == [0, 1, 2, 3, 4]  # 3 at once: the one still queued and two new ones
    assert len(active) == 3
