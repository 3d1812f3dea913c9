"""Sweeps: the same search with a pruner and without, the same search through Ray Tune's ASHA,
and the per-trial overhead of one-epoch trials.

The service runs as `trainq up` runs it (one training slot, one spare warm process); every
sweep runs ``max_concurrent`` = the slots. The search is the quickstart on ``mnist-sample``
with Adam's learning rate (log-uniform 1e-4..3: its top is hopeless) and the hidden width
(log-uniform 16..512) searched, ``val_accuracy`` maximized, the random sampler with a fixed
seed, so both sweeps try the same values (trial n draws from the seed and n alone).

1. The sweep without a pruner, then ``--rounds`` times the same with ``--pruner``: epochs
   trained with ÷ without, each best objective, the wall times (the sweep's recorded
   ``finished_at - created_at``; the pruned one's median).
2. In each round, right after the pruned sweep (the service idle meanwhile), the same trials
   (the very values the sweeps tried, in their order) through Ray Tune with ASHA (grace 1
   epoch, the same reduction factor, ``reuse_actors``), plain Keras one epoch at a time: the
   pruned sweep's wall time ÷ Ray Tune's (``Tuner.fit``; ``ray.init`` is timed apart), the
   median of the rounds. Needs ``.venv/bin/pip install 'ray[tune]==2.60.0'``.
3. ``--overhead-rounds`` times, one right after the other: a sweep of ``--overhead-trials``
   one-epoch trials, per-trial wall = sweep wall x slots ÷ trials (the slots train side by
   side), then the same trials' work by hand in this process (build and compile, ``fit``,
   evaluate on the test split, save the two model files: benchmarks/trial_parts.py, the
   median of the trials' sums); overhead = (per-trial wall - by hand) ÷ per-trial wall, the
   median of the rounds. Round 1 also shows where a trial's time goes besides its epoch (the
   database's timestamps), and the same values as plain jobs.

    .venv/bin/python -m benchmarks.sweep [--trials 24 --epochs 6 --pruner successive_halving
                                          --rounds 3 --overhead-trials 12
                                          --overhead-rounds 3 --no-ray --overhead-only]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from benchmarks import trial_parts
from benchmarks.harness import Bench, median, row, service
from shared.db import session_scope
from shared.models import Job
from shared.sweeps.spec import with_values
from tests.support import wait_until

ROOT = Path(__file__).resolve().parent.parent
BASE: dict[str, Any] = json.loads((ROOT / "examples" / "sweep.json").read_text())["spec"]
LR = "compile.optimizer.config.learning_rate"
UNITS = "model.layers[1].config.units"
SLOTS = 1  # the harness's TRAINQ_WORKER_SLOTS, as `trainq up` runs it
REDUCTION = 3
PRUNERS: dict[str, dict[str, Any]] = {
    "successive_halving": {
        "type": "successive_halving", "min_resource": 1, "reduction_factor": REDUCTION,
    },
    "median": {"type": "median", "n_startup_trials": 5},
    "none": {"type": "none"},
}  # fmt: skip


def body(name: str, trials: int, epochs: int, pruner: str, seed: int) -> dict[str, Any]:
    """The sweep as posted."""
    spec = copy.deepcopy(BASE)
    spec["fit"]["epochs"] = epochs
    return {
        "name": name,
        "spec": spec,
        "space": {
            LR: {"type": "float", "low": 1e-4, "high": 3.0, "log": True},
            UNITS: {"type": "int", "low": 16, "high": 512, "log": True},
        },
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "sampler": "random",
        "pruner": PRUNERS[pruner],
        "max_trials": trials,
        "max_concurrent": SLOTS,
        "seed": seed,
    }


def run_sweep(bench: Bench, sweep: dict[str, Any]) -> dict[str, Any]:
    """Post the sweep and wait until it has ended; the sweep as answered then."""
    r = bench.http.post(f"{bench.url}/api/v1/sweeps", json=sweep, headers=bench.headers[0])
    if r.status_code != 202:
        raise SystemExit(f"sweep refused: {r.status_code} {r.text[:500]}")
    url = f"{bench.url}/api/v1/sweeps/{r.json()['id']}"

    def ended() -> dict[str, Any] | None:
        got: dict[str, Any] = bench.http.get(url, headers=bench.headers[0]).json()
        return got if got["status"] != "running" else None

    done: dict[str, Any] = wait_until(ended, 3600, "the sweep", every=1.0)
    if done["status"] != "succeeded":
        raise SystemExit(f"sweep {done['id']} {done['status']}")
    return done


def wall(sweep: dict[str, Any]) -> float:
    """Seconds from the sweep's record to its end, as the database has them."""
    return (
        datetime.fromisoformat(sweep["finished_at"]) - datetime.fromisoformat(sweep["created_at"])
    ).total_seconds()


def epochs_trained(sweep: dict[str, Any]) -> int:
    """Epochs its trials trained."""
    return sum(t["epochs_done"] for t in sweep["tried"])


def show(label: str, sweep: dict[str, Any]) -> None:
    states: dict[str, int] = {}
    for t in sweep["tried"]:
        states[t["status"]] = states.get(t["status"], 0) + 1
    print(f"{label}: {states}")
    row("epochs trained", epochs_trained(sweep))
    row("best val_accuracy", sweep["best"]["value"])
    row("wall time", wall(sweep), "s")


def _ray() -> Any:
    try:
        from benchmarks import sweep_ray
    except ImportError:
        print(
            "Ray Tune is not installed; for part 2: .venv/bin/pip install 'ray[tune]==2.60.0' "
            "(or -c constraints.txt -e '.[bench]')"
        )
        return None
    return sweep_ray


def searches(bench: Bench, args: argparse.Namespace) -> None:
    """Parts 1 and 2: the sweep without a pruner, then rounds of the pruned sweep and Ray
    Tune's, one right after the other (the service idle meanwhile)."""
    plain = run_sweep(bench, body("unpruned", args.trials, args.epochs, "none", args.seed))
    params = [t["params"] for t in plain["tried"]]
    tune = None if args.no_ray else _ray()
    rounds: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    for r in range(args.rounds):
        pruned = run_sweep(bench, body("pruned", args.trials, args.epochs, args.pruner, args.seed))
        got = None
        if tune is not None:
            got = tune.run(
                params, epochs=args.epochs, slots=SLOTS, reduction=REDUCTION,
                steps_per_execution=args.ray_steps_per_execution,
            )  # fmt: skip
        rounds.append((pruned, got))
        line = f"round {r + 1}: the pruned sweep {wall(pruned):.1f} s"
        if got is not None:
            ratio = wall(pruned) / got["wall"]
            line += (f", Ray Tune {got['wall']:.1f} s (ray.init {got['init']:.1f} s apart, "
                     f"{got['errors']} trials failed): {ratio:.3f}")  # fmt: skip
        print(line)
    pruned = rounds[0][0]
    show(f"{args.trials} trials of up to {args.epochs} epochs, no pruner", plain)
    show(f"the same with the {args.pruner} pruner (round 1)", pruned)
    same = all([t["params"] for t in p["tried"]] == params for p, _ in rounds)
    print(f"  every sweep tried the same values: {same}")
    ratio = epochs_trained(pruned) / epochs_trained(plain)
    gap = (plain["best"]["value"] - pruned["best"]["value"]) / plain["best"]["value"]
    row("epochs with pruning / without (target <= 0.5)", ratio)
    row("best: (unpruned - pruned) / unpruned (<= 2 %)", gap * 100, "%")
    walls = [wall(p) for p, _ in rounds]
    row("wall time with pruning / without (median)", median(walls) / wall(plain))
    tuned = [(p, g) for p, g in rounds if g is not None]
    if not tuned:
        return
    got = tuned[0][1]
    print(f"Ray Tune {got['version']} with ASHA (grace 1, reduction {REDUCTION}), the same trials:")
    row("epochs trained (trainq pruned)", epochs_trained(pruned))
    row("epochs trained (Ray Tune)", got["epochs"])
    row("best val_accuracy of a full trial (Ray Tune)", got["best"])
    row("wall time, trainq pruned (median of rounds)", median(walls), "s")
    row("wall time, Ray Tune Tuner.fit (median)", median([g["wall"] for _, g in tuned]), "s")
    ratios = [wall(p) / g["wall"] for p, g in tuned]
    row("trainq / Ray Tune wall time, median of rounds (<= 1.0)", median(ratios))
    per_epoch = [wall(p) / epochs_trained(p) / (g["wall"] / g["epochs"]) for p, g in tuned]
    row("trainq / Ray Tune wall per epoch trained (median)", median(per_epoch))


def _seconds(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds()


def timings(db_url: str, ids: list[str]) -> dict[str, list[float]]:
    """Per job, in order, from the database's timestamps: the previous job's end to this one's
    record (a sweep's next trial is recorded then), its record to its start by a worker, its
    start to its epoch's begin (the recorded end minus duration_s), the epoch, the epoch's end
    to the job's end."""
    with session_scope(db_url) as s:
        found = s.scalars(select(Job).where(Job.id.in_(ids)).options(selectinload(Job.epochs)))
        jobs = sorted(found, key=lambda j: ids.index(j.id))
        keys = ("handover", "ask", "dispatch", "setup", "epoch", "tail")
        out: dict[str, list[float]] = {k: [] for k in keys}
        for before, job in zip([None, *jobs[:-1]], jobs, strict=True):
            assert job.started_at and job.finished_at and len(job.epochs) == 1
            epoch = job.epochs[0]
            if before is not None and before.finished_at is not None:
                out["handover"].append(_seconds(before.finished_at, job.started_at))
                out["ask"].append(_seconds(before.finished_at, job.created_at))
            out["dispatch"].append(_seconds(job.created_at, job.started_at))
            out["setup"].append(_seconds(job.started_at, epoch.finished_at) - epoch.duration_s)
            out["epoch"].append(epoch.duration_s)
            out["tail"].append(_seconds(epoch.finished_at, job.finished_at))
        return out


def _show_parts(parts: dict[str, list[float]], trials: bool) -> None:
    names = {
        "handover": "previous one ended -> this one started",
        "ask": "  previous trial ended -> this one recorded",
        "dispatch": "  recorded -> started by a worker",
        "setup": "started -> its epoch began (build, compile)",
        "epoch": "the epoch (duration_s)",
        "tail": "epoch ended -> job finished (test, save)",
    }
    print(f"  {'where the time goes, per one (mean, median)':<50} {'mean':>8} {'median':>8}")
    for key, name in names.items():
        if trials or key not in ("ask", "dispatch"):  # a plain job was recorded long before
            values = parts[key]
            print(f"    {name:<48} {statistics.fmean(values):>8.3f} {median(values):>8.3f} s")


def one_epoch_sweep(
    bench: Bench, args: argparse.Namespace, verbose: bool
) -> tuple[list[dict[str, Any]], float, list[str]]:
    """One sweep of one-epoch trials: its trials' values, its per-trial wall and job ids; with
    ``verbose`` where a trial's time goes besides its epoch (the database's timestamps)."""
    n = args.overhead_trials
    sweep = run_sweep(bench, body("one-epoch", n, 1, "none", args.seed + 1))
    tried = sorted(sweep["tried"], key=lambda t: t["trial"])
    ids = [t["job_id"] for t in tried]
    per_trial = wall(sweep) * SLOTS / n
    if verbose:
        parts = timings(bench.service.db_url, ids)
        epoch = median(parts["epoch"])
        print(f"{n} one-epoch trials, {SLOTS} slot(s) (round 1):")
        row("sweep wall time", wall(sweep), "s")
        row("per-trial wall = wall x slots / trials", per_trial, "s")
        row("epoch (median recorded duration_s)", epoch, "s")
        row("(per-trial - epoch) / per-trial", (per_trial - epoch) / per_trial * 100, "%")
        _show_parts(parts, trials=True)
        first, last = bench.get(ids[0]), bench.get(ids[-1])
        stamp = datetime.fromisoformat
        row(
            "sweep recorded -> its first trial started",
            _seconds(stamp(sweep["created_at"]), stamp(first["started_at"])),
            "s",
        )
        row(
            "its last trial ended -> sweep ended",
            _seconds(stamp(last["finished_at"]), stamp(sweep["finished_at"])),
            "s",
        )
    return [t["params"] for t in tried], per_trial, ids


def as_plain_jobs(bench: Bench, params: list[dict[str, Any]]) -> None:
    """The same values as plain one-epoch jobs, submitted at once, for comparison."""
    specs = []
    for n, values in enumerate(params):
        spec = with_values(body("", 1, 1, "none", 0)["spec"], values)
        spec["name"] = f"plain #{n}"
        specs.append(spec)
    ids = [bench.submit(spec) for spec in specs]
    jobs = [bench.wait(i) for i in ids]
    began = min(datetime.fromisoformat(j["created_at"]) for j in jobs)
    ended = max(datetime.fromisoformat(j["finished_at"]) for j in jobs)
    per_job = _seconds(began, ended) * SLOTS / len(ids)
    plain = timings(bench.service.db_url, ids)
    print(f"the same {len(ids)} values as plain one-epoch jobs, submitted at once:")
    row("per-job wall = (last end - first record) x slots / jobs", per_job, "s")
    share = (per_job - median(plain["epoch"])) / per_job
    row("(per-job - epoch) / per-job", share * 100, "%")
    _show_parts(plain, trials=False)


def overhead(bench: Bench, args: argparse.Namespace) -> None:
    """Part 3, in rounds: a sweep of one-epoch trials, then the same trials by hand in this
    process (build and compile, fit, evaluate, save), one right after the other; the overhead
    = (per-trial wall - by hand) / per-trial wall, the median of the rounds."""
    base = body("", 1, 1, "none", 0)["spec"]
    shares = []
    for r in range(args.overhead_rounds):
        params, per_trial, _ = one_epoch_sweep(bench, args, verbose=r == 0)
        by_hand = trial_parts.show(params, base, verbose=r == 0)
        shares.append((per_trial - by_hand) / per_trial)
        print(f"round {r + 1}: per-trial wall {per_trial:.3f} s in the sweep, {by_hand:.3f} s by "
              f"hand: overhead {shares[-1] * 100:.1f} %")  # fmt: skip
        if r == 0:
            as_plain_jobs(bench, params)
    print("what trainq adds to a one-epoch trial, against the same work by hand:")
    row("overhead = (per-trial wall - by hand) / per-trial wall, median of rounds (<= 10 %)",
        median(shares) * 100, "%")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--pruner", choices=["successive_halving", "median"],
                        default="successive_halving")  # fmt: skip
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--overhead-trials", type=int, default=12)
    parser.add_argument("--overhead-rounds", type=int, default=3,
                        help="one-epoch sweep and the same trials by hand, in turn")  # fmt: skip
    parser.add_argument("--ray-steps-per-execution", type=int, default=32,
                        help="as trainq's TRAINQ_AUTO_STEPS_PER_EXECUTION")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="pruned sweep and Ray Tune, in turn")
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--overhead-only", action="store_true", help="part 3 alone")
    args = parser.parse_args()
    started = time.perf_counter()
    with service(TRAINQ_MAX_QUEUED_JOBS="1000") as bench:
        warm = copy.deepcopy(BASE)
        warm["fit"]["epochs"] = 1
        bench.wait(bench.submit(warm), timeout=600)  # the dataset and first fit, once
        if not args.overhead_only:
            searches(bench, args)
        overhead(bench, args)
    print(f"(the whole benchmark took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
