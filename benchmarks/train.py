"""Training speed: the quickstart through trainq against the quickstart script as written.

Both train the quickstart's model on Fashion-MNIST (60k/10k) for the same epochs with the same
seed, on this machine, in this run. Prints seconds per epoch (median over epochs 2..n, so the
first epoch's graph tracing counts in neither), their ratio, and both test accuracies.

    .venv/bin/python -m benchmarks.train [--epochs 5] [--seed 42]
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
    """Run both, print the figures and the ratio."""
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--epochs", type=int, default=5)
    args.add_argument("--seed", type=int, default=42)
    opts = args.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "KERAS_HOME": str(keras_home_with_fashion_mnist(Path(tmp))),
               "TF_CPP_MIN_LOG_LEVEL": "2"}  # fmt: skip
        out = subprocess.run(
            [sys.executable, str(HERE / "quickstart_script.py"), str(opts.seed), str(opts.epochs)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
    script = json.loads(out.stdout.strip().splitlines()[-1])

    with service(keras_home=True) as bench:
        job = bench.wait(bench.submit(quickstart_spec(opts.epochs, opts.seed)))
    served = [h["duration_s"] for h in job["history"]]

    script_s = median(script["epoch_seconds"][1:] or script["epoch_seconds"])
    served_s = median(served[1:] or served)
    print(f"train: quickstart on Fashion-MNIST, {opts.epochs} epochs, seed {opts.seed}")
    row("script as written: s/epoch (median)", script_s, "s")
    row("trainq: s/epoch (median)", served_s, "s")
    row("ratio trainq / script (target <= 0.55)", served_s / script_s)
    row("script test accuracy", script["test_accuracy"])
    row("trainq test accuracy", job["test_metrics"]["accuracy"])
    row(
        "accuracy difference, % (target <= 0.5)",
        100 * abs(job["test_metrics"]["accuracy"] - script["test_accuracy"]),
    )


if __name__ == "__main__":
    main()
