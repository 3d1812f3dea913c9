"""`trainq sweep ...` in a terminal: a sweep's trials as a table, redrawn live while it runs."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.live import Live
from rich.table import Table

from trainq.client import FINISHED, Client
from trainq.progress import console
from trainq.tables import Fitted, when

POLL_SECONDS = 1.0


def value_text(value: Any) -> str:
    """A parameter's or an objective's value, short: four significant digits for floats."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def labels(paths: list[str]) -> dict[str, str]:
    """A column label for each searched path: its last key, or the whole path where two share
    one (``model.layers[1].config.units`` is ``units``)."""
    last = {p: p.rsplit(".", 1)[-1] for p in paths}
    taken = list(last.values())
    return {p: name if taken.count(name) == 1 else p for p, name in last.items()}


def table(sweep: dict[str, Any]) -> Fitted:
    """Every trial tried so far: its number, status, epochs, objective and values; the best
    one marked with *."""
    best = (sweep.get("best") or {}).get("trial")
    paths = list(sweep.get("space") or {})
    names = labels(paths)
    # In a narrow terminal the job's id (last) is cut short; `trainq sweep status --json` and
    # the best trial's line give it whole.
    first = ["", "TRIAL", "STATUS", "EPOCHS", sweep["objective"]["metric"].upper()]
    first += [names[p] for p in paths]
    out = Fitted([*first, "JOB"], whole=first)
    for trial in sweep.get("tried", []):
        value = trial.get("value")
        out.add_row(
            "*" if trial["trial"] == best else "", str(trial["trial"]), trial["status"],
            f"{trial['epochs_done']}/{trial['epochs']}",
            "" if value is None else value_text(value),
            *(value_text(trial["params"].get(p, "")) for p in paths), trial["job_id"],
        )  # fmt: skip
    return out


def counts_text(counts: dict[str, int]) -> str:
    """``2 succeeded, 1 running``: the trials by status."""
    return ", ".join(f"{n} {status}" for status, n in counts.items() if n) or "no trials"


def best_text(sweep: dict[str, Any]) -> str:
    """The best trial so far: its number, job, objective value and values."""
    best, metric = sweep.get("best"), sweep["objective"]["metric"]
    if not best:
        return f"best: none yet (no trial has finished with {metric})"
    params = " ".join(f"{p}={value_text(v)}" for p, v in best["params"].items())
    return (
        f"best: trial {best['trial']}, job {best['job_id']}, {metric}={value_text(best['value'])}"
        f" ({sweep['objective']['direction']}); {params}"
    )


def header(sweep: dict[str, Any]) -> str:
    """The sweep's id, name, status and trials by status, on one line."""
    return (
        f"{sweep['id']}  {sweep['name']}  {sweep['status']}  trials: "
        f"{counts_text(sweep['trials'])} (of at most {sweep['max_trials']})"
    )


def status(client: Client, sweep_id: str) -> int:
    """Print the sweep's state and its trials' table."""
    sweep = client.get_sweep(sweep_id)
    out = console()
    out.print(header(sweep), markup=False)
    out.print(table(sweep))
    out.print(best_text(sweep), markup=False)
    return 0


def follow(client: Client, sweep_id: str, poll: float = POLL_SECONDS) -> int:
    """Show the sweep's trials live until it ends, then its best trial; 0 if it succeeded.

    A terminal sees the table redrawn every ``poll`` seconds; a pipe gets one line for each
    trial's change of status, then the table as it ended.
    """
    out, err = console(), console(stderr=True)
    sweep = client.get_sweep(sweep_id)
    seen: dict[int, str] = {}

    def changes(sweep: dict[str, Any]) -> None:
        for trial in sweep.get("tried", []):
            if seen.get(trial["trial"]) != trial["status"]:
                seen[trial["trial"]] = trial["status"]
                line = f"trial {trial['trial']} ({trial['job_id']}): {trial['status']}"
                if trial["status"] in FINISHED and trial.get("value") is not None:
                    line += f" {sweep['objective']['metric']}={value_text(trial['value'])}"
                out.print(line, markup=False)

    def view(sweep: dict[str, Any]) -> Table:
        grid = Table.grid()
        grid.add_row(header(sweep))
        grid.add_row(table(sweep))
        return grid

    if out.is_terminal:
        with Live(view(sweep), console=out, refresh_per_second=4) as live:
            while sweep["status"] == "running":
                time.sleep(poll)
                sweep = client.get_sweep(sweep_id)
                live.update(view(sweep))
    else:
        changes(sweep)
        while sweep["status"] == "running":
            time.sleep(poll)
            sweep = client.get_sweep(sweep_id)
            changes(sweep)
        out.print(view(sweep))
    out.print(best_text(sweep), markup=False)
    if sweep["status"] == "succeeded":
        return 0
    err.print(f"sweep {sweep['status']}", markup=False)
    sys.stderr.flush()
    return 1


def sweeps_table(sweeps: list[dict[str, Any]]) -> Fitted:
    """The caller's sweeps: id, status, trials done, best value, created, name."""
    out = Fitted(("ID", "STATUS", "TRIALS", "BEST", "CREATED", "NAME"),
                 whole=("ID", "STATUS", "TRIALS"))  # fmt: skip
    for sweep in sweeps:
        done = sum(n for s, n in sweep["trials"].items() if s in FINISHED)
        best = sweep.get("best")
        metric = sweep["objective"]["metric"]
        out.add_row(
            sweep["id"], sweep["status"], f"{done}/{sweep['max_trials']}",
            f"{metric}={value_text(best['value'])}" if best else "",
            when(sweep["created_at"]), sweep["name"],
        )  # fmt: skip
    return out
