"""Training on a 1 GiB uploaded dataset: the worker processes' peak resident memory during the
job ÷ the same job on a 100 MB one (target <= 1.5). With the default
TRAINQ_DATASET_STREAM_BYTES (256 MiB) the 1 GiB one trains from its files, batch by batch;
the 100 MB one from memory, as every dataset did before.

nice -n 5 .venv/bin/python -m benchmarks.big_dataset [--small-mib 100 --big-mib 1024]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import trainq
from benchmarks.harness import row, service
from benchmarks.upload import Peak, write_npz


def largest_process_mib(root: int) -> float:
    """Resident memory of the largest process of a tree, in MiB: the one training the job (the
    others are the Celery parent and the warm spares, some loading TensorFlow meanwhile)."""
    largest, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
            todo += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except FileNotFoundError:
            continue
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
        largest = max(largest, rss)
    return largest / 1024


SPEC: dict[str, Any] = {
    "name": "big-dataset",
    "model": {"layers": [
        {"class_name": "Flatten", "config": {"input_shape": [32, 32, 3]}},
        {"class_name": "Dense", "config": {"units": 10}},
    ]},
    "compile": {
        "optimizer": "adam",
        "loss": {"class_name": "SparseCategoricalCrossentropy", "config": {"from_logits": True}},
        "metrics": ["accuracy"],
    },
    "fit": {"epochs": 1, "batch_size": 512},
    "seed": 1,
}  # fmt: skip


def main() -> None:
    """Upload both datasets, train one epoch on each; print the worker's peaks."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small-mib", type=int, default=100)
    parser.add_argument("--big-mib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trainq-big-") as tmp, service() as bench:
        token = bench.headers[0]["Authorization"].split()[1]
        client = trainq.Client(bench.url, token, timeout=3600)
        worker = bench.service.procs["worker"].pid
        figures = {}
        for mib in (args.small_mib, args.big_mib):
            path = Path(tmp) / f"d{mib}.npz"
            n = write_npz(path, mib)
            dataset = client.upload_dataset(path, f"d{mib}")
            path.unlink()
            time.sleep(5)
            idle = largest_process_mib(worker)
            spec = {**SPEC, "dataset": {"id": dataset["id"], "scale": 255.0}}
            with Peak(worker, largest_process_mib) as peak, Peak(worker) as tree:
                started = time.monotonic()
                bench.wait(bench.submit(spec), timeout=3600)
                seconds = time.monotonic() - started
            figures[mib] = (n, idle, peak.peak, tree.peak, seconds)
    print("big dataset: the worker's largest process (the one training), resident memory")
    for mib, (n, idle, top, whole, seconds) in figures.items():
        row(f"{mib} MiB ({n} samples): largest process idle", idle, "MiB")
        row(f"{mib} MiB: training process peak", top, "MiB")
        row(f"{mib} MiB: all worker processes' peak", whole, "MiB")
        row(f"{mib} MiB: job time (1 epoch)", seconds, "s")
    small, big = figures[args.small_mib][2], figures[args.big_mib][2]
    row(f"training peak {args.big_mib} MiB / {args.small_mib} MiB (target <= 1.5)", big / small)


if __name__ == "__main__":
    main()
