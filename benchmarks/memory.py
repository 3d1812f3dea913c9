"""Worker memory: resident memory of the worker processes after 1 job and after 20 jobs.

.venv/bin/python -m benchmarks.memory [--jobs 20]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.harness import row, service

ROOT = Path(__file__).resolve().parent.parent


def _rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except FileNotFoundError:
            continue
        total += next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")
        )
        todo += [int(c) for c in children]
    return total / 1024


def main() -> None:
    """Run jobs one after another; measure the worker once idle after the 1st and the last."""
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--jobs", type=int, default=20)
    jobs = args.parse_args().jobs
    spec = json.loads((ROOT / "examples" / "quickstart.json").read_text())
    spec["fit"]["epochs"] = 1
    with service() as bench:
        worker = bench.service.procs["worker"].pid
        readings = {}
        for i in range(1, jobs + 1):
            bench.wait(bench.submit(spec))
            if i in (1, jobs):
                time.sleep(8)  # the next child has been forked and has loaded TensorFlow
                readings[i] = _rss_mib(worker)
    print("memory: worker processes, resident, after quickstart jobs of 1 epoch")
    row("after 1 job", readings[1], "MiB")
    row(f"after {jobs} jobs", readings[jobs], "MiB")
    row(f"ratio after {jobs} / after 1 (target <= 1.10)", readings[jobs] / readings[1])


if __name__ == "__main__":
    main()
