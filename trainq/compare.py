"""`trainq compare A B C`: what differs between jobs' specs, and their final and best metrics,
as tables (every spec path with --all; the API's JSON with --json)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table

from trainq.client import Client
from trainq.progress import console


def _value(value: Any) -> str:
    return "—" if value is None else json.dumps(value) if not isinstance(value, str) else value


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def spec_table(found: dict[str, Any], everything: bool = False) -> Table:
    """The spec paths where the jobs differ (all of them with ``everything``), a column a job."""
    out = Table(box=None, header_style="bold")
    out.add_column("SPEC PATH", no_wrap=True)
    for job in found["jobs"]:
        out.add_column(job["id"][:8], no_wrap=True)
    for row in found["spec"]:
        if everything or row["differs"]:
            out.add_row(row["path"], *(_value(v) for v in row["values"]))
    return out


def metrics_table(found: dict[str, Any]) -> Table:
    """Each recorded metric's final and best value per job, then the test metrics."""
    out = Table(box=None, header_style="bold")
    out.add_column("METRIC", no_wrap=True)
    for job in found["jobs"]:
        out.add_column(job["id"][:8], no_wrap=True)
    names = sorted({name for job in found["jobs"] for name in job["metrics"]})
    for name in names:
        cells = []
        for job in found["jobs"]:
            m = job["metrics"].get(name)
            cells.append(f"{_number(m['final'])} (best {_number(m['best'])})" if m else "—")
        out.add_row(name, *cells)
    tests = sorted({name for job in found["jobs"] for name in job["test_metrics"] or {}})
    for name in tests:
        out.add_row(f"test {name}", *(_number((j["test_metrics"] or {}).get(name))
                                      for j in found["jobs"]))  # fmt: skip
    return out


def _cmd_compare(client: Client, args: argparse.Namespace) -> int:
    found = client.compare(*args.job_ids)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    out = console()
    differing = sum(row["differs"] for row in found["spec"])
    if differing or args.all:
        out.print(spec_table(found, args.all))
    total = len(found["spec"]) + found.get("omitted", 0)
    if not args.all:
        out.print(f"{differing} spec path(s) differ of {total} (--all shows every one)")
    if found.get("omitted"):
        out.print(f"{found['omitted']} spec path(s) that are the same in every job not listed "
                  "(too many to list)")  # fmt: skip
    out.print(metrics_table(found))
    return 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """`trainq compare JOB [JOB ...] [--all]`."""
    c = sub.add_parser(
        "compare", parents=[common], help="what differs between jobs, and their metrics"
    )
    c.add_argument("job_ids", nargs="+", metavar="job_id")
    c.add_argument("--all", action="store_true", help="every spec path, not only those that differ")
    c.set_defaults(func=_cmd_compare)
