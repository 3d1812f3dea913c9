"""The store: the quickstart job with its files in an S3-compatible bucket ÷ in the local folder.

Two services run side by side, as `trainq up` runs them (one training slot, a warm spare): one
with the local folders (no store configured), one with `TRAINQ_STORAGE_URL=s3://...` on a real
S3-compatible server (moto's server mode, on loopback). Their jobs run in turn, one at a time,
so both see the same machine; the figure is each job's time from submit to succeeded, as its
owner waits for it (the model files, each epoch's checkpoint and the TensorBoard logs go to the
bucket in the S3 run).

    .venv/bin/python -m benchmarks.storage [--rounds 3] [--epochs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Bench, median, row, service
from tests.s3 import CREDENTIALS, moto_server

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART: dict[str, Any] = json.loads((ROOT / "examples" / "quickstart.json").read_text())


def _job_seconds(bench: Bench, epochs: int) -> float:
    spec = copy.deepcopy(QUICKSTART)
    spec["fit"]["epochs"] = epochs
    start = time.perf_counter()
    bench.wait(bench.submit(spec))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="trainq-store-")))
        store = stack.enter_context(moto_server(tmp))
        store.make_bucket("bench")
        local = stack.enter_context(service())
        env = {"TRAINQ_STORAGE_URL": "s3://bench/trainq", "TRAINQ_S3_ENDPOINT_URL": store.endpoint}
        s3 = stack.enter_context(service(1, False, **env, **CREDENTIALS))
        _job_seconds(local, 1), _job_seconds(s3, 1)  # each worker has trained once
        times: dict[str, list[float]] = {"local": [], "s3": []}
        for _ in range(args.rounds):
            times["local"].append(_job_seconds(local, args.epochs))
            times["s3"].append(_job_seconds(s3, args.epochs))
        kept = store.fs().find("bench/trainq")
    print(f"quickstart, {args.epochs} epochs, {args.rounds} rounds (submit to succeeded):")
    for name, values in times.items():
        row(f"{name} (median of {', '.join(f'{v:.2f}' for v in values)})", median(values), "s")
    ratios = [s / lo for s, lo in zip(times["s3"], times["local"], strict=True)]
    row(f"S3 ÷ local, per round ({', '.join(f'{r:.3f}' for r in ratios)})", median(ratios))
    print(f"  objects in the bucket afterwards: {len(kept)}")


if __name__ == "__main__":
    main()
