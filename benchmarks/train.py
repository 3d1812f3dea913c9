"""Training speed: the quickstart through trainq against the quickstart script as written.

Both train the quickstart's model on Fashion-MNIST (60k/10k) for the same epochs with the same
seed, on this machine, in this run. Prints seconds per epoch (median over epochs 2..n, so the
first epoch's graph tracing counts in neither), their ratio, and both test accuracies. Both
run in each round, one after the other, so that a burst of other work on the shared machine
falls on both alike; the ratio printed last is the median of the rounds' ratios.

    .venv/bin/python -m benchmarks.train [--epochs 5] [--seed 42] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.harness import keras_home_with_fashion_mnist, median, row, service

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def quickstart_spec(epochs: int, seed: int) -> dict[str, Any]:
    """The quickstart on Fashion-MNIST, as a trainq job spec (no validation split, as written)."""
    spec: dict[str, Any] = json.loads((ROOT / "examples" / "quickstart.json").read_text())
    spec["dataset"]["name"] = "fashion_mnist"
    spec["fit"] = {"epochs": epochs, "batch_size": 32}
    spec["seed"] = seed
    return spec


def main() -> None:
    """Run both, round after round; print the figures, each round's ratio and the median."""
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--epochs", type=int, default=5)
    args.add_argument("--seed", type=int, default=42)
    args.add_argument("--rounds", type=int, default=3)
    opts = args.parse_args()

    scripts: list[float] = []
    served: list[float] = []
    accuracies: set[tuple[float, float]] = set()
    with tempfile.TemporaryDirectory() as tmp, service(keras_home=True) as bench:
        env = {**os.environ, "KERAS_HOME": str(keras_home_with_fashion_mnist(Path(tmp))),
               "TF_CPP_MIN_LOG_LEVEL": "2"}  # fmt: skip
        for _ in range(opts.rounds):  # one after the other: a burst on the machine hits both
            out = subprocess.run(
                [sys.executable, str(HERE / "quickstart_script.py"), str(opts.seed),
                 str(opts.epochs)], env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            script = json.loads(out.stdout.strip().splitlines()[-1])
            job = bench.wait(bench.submit(quickstart_spec(opts.epochs, opts.seed)))
            seconds = script["epoch_seconds"]
            durations = [h["duration_s"] for h in job["history"]]
            scripts.append(median(seconds[1:] or seconds))
            served.append(median(durations[1:] or durations))
            accuracies.add((script["test_accuracy"], job["test_metrics"]["accuracy"]))

    ratios = [t / s for s, t in zip(scripts, served, strict=True)]
    script_acc, served_acc = max(accuracies, key=lambda a: abs(a[0] - a[1]))
    print(f"train: quickstart on Fashion-MNIST, {opts.epochs} epochs, seed {opts.seed}, "
          f"{opts.rounds} rounds")  # fmt: skip
    print("  s/epoch script as written:", " ".join(f"{v:.3f}" for v in scripts))
    print("  s/epoch trainq:           ", " ".join(f"{v:.3f}" for v in served))
    print("  ratios:                   ", " ".join(f"{v:.3f}" for v in ratios))
    row("script as written: s/epoch (median)", median(scripts), "s")
    row("trainq: s/epoch (median)", median(served), "s")
    row("ratio trainq / script, median (target <= 0.55)", median(ratios))
    row("script test accuracy", script_acc)
    row("trainq test accuracy", served_acc)
    row("accuracy difference, % (target <= 0.5)", 100 * abs(served_acc - script_acc))


if __name__ == "__main__":
    main()
