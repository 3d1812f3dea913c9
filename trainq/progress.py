"""Following a job in a terminal: a live progress bar driven by the job's event stream."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Column

from trainq.client import FINISHED, Client

SHOWN = ("loss", "accuracy", "val_loss", "val_accuracy")
BAR = 30  # the progress bar's width, in columns
PIPED_WIDTH = 1000  # a pipe or a file: tables whole, lines never wrapped


def console(stderr: bool = False) -> Console:
    """A console that never wraps lines or cuts a table when it writes to a pipe or a file."""
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal else PIPED_WIDTH
    return Console(stderr=stderr, width=width, highlight=False, soft_wrap=True)


def metrics_text(metrics: dict[str, Any] | None, keys: tuple[str, ...] | None = None) -> str:
    """`name=value` pairs, four decimals for numbers."""
    items = [(k, v) for k, v in (metrics or {}).items() if keys is None or k in keys]
    return " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in items)


def _eta(durations: list[float], done: int, total: int) -> str:
    if not durations or done >= total:
        return ""
    seconds = sum(durations) / len(durations) * (total - done)
    return f"eta {seconds:.0f}s"


def follow(client: Client, job_id: str) -> int:
    """Show the job live until it ends; 0 if it succeeded (or its sweep pruned it), 1 with the
    reason if not."""
    out, err = console(), console(stderr=True)
    total = client.get(job_id)["progress"]["epochs"]
    durations: list[float] = []
    final: dict[str, Any] = {}
    # The status, the bar, epoch k of n and the time left are never cut: the metrics, last,
    # take what the terminal has left (cut short there; each epoch's line has them all).
    room = out.width - (9 + BAR + 2 * len(str(total)) + 1 + len("eta 9999s") + 4)
    columns = (
        TextColumn("{task.description:9}"),
        BarColumn(bar_width=BAR),
        MofNCompleteColumn(),
        TextColumn("{task.fields[eta]}"),
        TextColumn("{task.fields[metrics]}", table_column=Column(
            no_wrap=True, overflow="ellipsis", max_width=max(room, 1))),
    )  # fmt: skip
    with Progress(*columns, console=out, disable=not out.is_terminal) as bar:
        task = bar.add_task("queued", total=total, metrics="", eta="")
        for event in client.follow(job_id):
            if event["type"] == "status":
                status = event["status"]
                out.print(f"{job_id}: {status}", markup=False)
                bar.update(task, description=status)
                if status == "running":  # a restarted attempt trains from the first epoch
                    durations.clear()
                    bar.update(task, completed=0, metrics="", eta="")
                final = event
            elif event["type"] == "epoch":
                n = event["epoch"]
                durations.append(event["duration_s"])
                eta = _eta(durations, n, total)
                out.print(
                    f"  epoch {n}/{total} {metrics_text(event['metrics'])} "
                    f"({event['duration_s']:.1f}s){' ' + eta if eta else ''}",
                    markup=False,
                )
                shown = metrics_text(event["metrics"], SHOWN)
                bar.update(task, completed=n, metrics=shown, eta=eta)
    if final.get("status") not in FINISHED:  # the stream ended without a final event
        job = client.get(job_id)
        final = {k: job.get(k) for k in ("status", "error", "test_metrics")}
    if final.get("status") in ("succeeded", "pruned"):  # pruned: its sweep stopped it early
        if final.get("test_metrics"):
            out.print(f"test: {metrics_text(final['test_metrics'])}", markup=False)
        return 0
    reason = final.get("error") or ""
    err.print(f"job {final.get('status', 'ended')}: {reason}", markup=False)
    sys.stderr.flush()
    return 1
