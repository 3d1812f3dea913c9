"""Many jobs: one-epoch jobs from 4 users, throughput and per-job overhead.

Per-job overhead = (wall time through trainq - the same jobs done one after another in one plain
process) / number of jobs, relative to one job's own time in that process. What a job does there
is what the quickstart script does and what each trainq job does: build, compile, fit one epoch,
evaluate on the test split; then ``clear_session()`` before the next.

    .venv/bin/python -m benchmarks.many_jobs [--jobs 200] [--users 4]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.harness import row, service
from shared.datasets.builtin import load
from shared.ml.build import build_model, compile_model, preprocess
from shared.spec.job import JobSpec

ROOT = Path(__file__).resolve().parent.parent


def _small_spec() -> dict:  # type: ignore[type-arg]
    spec = json.loads((ROOT / "examples" / "quickstart.json").read_text())
    spec["fit"] = {"epochs": 1, "batch_size": 64}
    return spec  # type: ignore[no-any-return]


def _plain(spec: dict, jobs: int) -> float:  # type: ignore[type-arg]
    import keras

    parsed = JobSpec.model_validate(spec)
    data = load(parsed.dataset.name)
    x = preprocess(data.x_train, parsed.dataset.scale)
    x_test = preprocess(data.x_test, parsed.dataset.scale)
    started = time.perf_counter()
    for _ in range(jobs):
        keras.utils.set_random_seed(42)
        model = build_model(parsed, tuple(x.shape[1:]))
        compile_model(model, parsed)
        model.fit(x, data.y_train, epochs=1, batch_size=64, verbose=0)
        model.evaluate(x_test, data.y_test, batch_size=256, verbose=0)
        keras.backend.clear_session()
    return time.perf_counter() - started


def main() -> None:
    """Print jobs per minute and the overhead ratio."""
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--jobs", type=int, default=200)
    args.add_argument("--users", type=int, default=4)
    opts = args.parse_args()
    spec = _small_spec()
    plain = _plain(spec, min(opts.jobs, 20)) / min(opts.jobs, 20)
    with service(users=opts.users) as bench:
        started = time.perf_counter()
        ids = [(bench.submit(spec, i % opts.users), i % opts.users) for i in range(opts.jobs)]
        for job_id, user in ids:
            bench.wait(job_id, user)
        wall = time.perf_counter() - started
    per_job = wall / opts.jobs
    print(f"many jobs: {opts.jobs} one-epoch jobs from {opts.users} users")
    row("jobs per minute", 60 / per_job)
    row("wall seconds per job through trainq", per_job, "s")
    row("seconds per job in one plain process", plain, "s")
    row("per-job overhead / training time (target <= 0.10)", (per_job - plain) / plain)


if __name__ == "__main__":
    main()
