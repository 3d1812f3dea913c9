"""Latency: from submit to the first epoch's start, on an idle, warm worker.

The first epoch's start is its end minus its duration, both recorded by the worker.

    .venv/bin/python -m benchmarks.latency [--jobs 5]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from benchmarks.harness import median, row, service
from shared.db import session_scope
from shared.models import EpochRecord

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    """Submit jobs one at a time, each once the worker is idle and warm again."""
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--jobs", type=int, default=5)
    jobs = args.parse_args().jobs
    spec = json.loads((ROOT / "examples" / "quickstart.json").read_text())
    spec["fit"]["epochs"] = 1
    waits = []
    with service() as bench:
        for _ in range(jobs):
            time.sleep(10)  # the recycled worker child has loaded TensorFlow again
            submitted = datetime.now().astimezone()
            job_id = bench.submit(spec)
            bench.wait(job_id)
            with session_scope(bench.service.db_url) as s:
                first = s.scalar(
                    select(EpochRecord).where(EpochRecord.job_id == job_id, EpochRecord.epoch == 1)
                )
                assert first is not None
                started = first.finished_at.timestamp() - first.duration_s
            waits.append(started - submitted.timestamp())
    print("latency: submit -> first epoch starts, idle warm worker")
    row("median", median(waits), "s")
    row("max", max(waits), "s")
    row("median / 1 s target (target <= 1)", median(waits) / 1.0)


if __name__ == "__main__":
    main()
