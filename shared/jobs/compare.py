"""Jobs side by side: their specs flattened to paths (as a sweep's space names them), the paths
whose values differ, each recorded metric's final and best value, and its curve per job."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from shared.errors import InvalidInput
from shared.jobs import queries
from shared.models import Job, User
from shared.spec import inline

MAX_JOBS = 20
# Rows of ``spec`` at most; past it only the paths that differ are listed (``omitted``).
MAX_SPEC_ROWS = 10_000
_MISSING = object()


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"fit": {"epochs": 5}, "model": {"layers": [{...}]}}`` as ``{"fit.epochs": 5,
    "model.layers[0]....": ...}``; an empty dict or list is a value of its own."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _lower_is_better(metric: str) -> bool:
    name = metric.removeprefix("val_")
    return "loss" in name or "error" in name


def _metrics(job: Job) -> dict[str, dict[str, Any]]:
    """Per recorded metric: its curve by epoch, its final value (the last recorded) and its
    best (the lowest for a loss or an error, the highest for anything else)."""
    curves: dict[str, list[float | None]] = {}
    epochs = sorted(job.epochs, key=lambda e: e.epoch)
    for i, record in enumerate(epochs):
        for name in record.metrics or {}:
            curves.setdefault(name, [None] * i)
        for name, curve in curves.items():
            value = (record.metrics or {}).get(name)
            curve.append(value if isinstance(value, int | float) else None)
    out = {}
    for name, curve in curves.items():
        seen = [v for v in curve if v is not None]
        best = (min if _lower_is_better(name) else max)(seen) if seen else None
        # The last value recorded: a val_ metric with validation_freq skips epochs.
        out[name] = {"final": seen[-1] if seen else None, "best": best, "curve": curve}
    return out


def compare(session: Session, owner: User, job_ids: list[str]) -> dict[str, Any]:
    """The caller's jobs side by side (another user's job is not found, as everywhere)."""
    ids = list(dict.fromkeys(job_ids))
    if not 1 <= len(ids) <= MAX_JOBS:
        raise InvalidInput(
            f"jobs: give between 1 and {MAX_JOBS} distinct job ids, comma-separated",
            details={"field": "jobs"},
        )
    jobs = [queries.get_job(session, owner, job_id) for job_id in ids]
    # Inline arrays as their shape and digest, as a job's details show them: not a row per
    # number (100,000 of them a job).
    flat = [flatten(inline.shown(job.spec, digest=True)) for job in jobs]
    paths = sorted({p for f in flat for p in f})
    specs = []
    for path in paths:
        values = [f.get(path, _MISSING) for f in flat]
        differs = any(v != values[0] for v in values[1:])
        specs.append(
            {
                "path": path,
                "values": [None if v is _MISSING else v for v in values],
                "differs": differs,
            }
        )
    omitted = 0
    if len(specs) > MAX_SPEC_ROWS:  # the paths that differ, as many as fit
        kept = [row for row in specs if row["differs"]][:MAX_SPEC_ROWS]
        omitted, specs = len(specs) - len(kept), kept
    return {
        "jobs": [
            {
                "id": job.id,
                "name": job.name,
                "status": job.status.value,
                "test_metrics": job.test_metrics,
                "metrics": _metrics(job),
            }
            for job in jobs
        ],
        "spec": specs,
        "omitted": omitted,
    }
