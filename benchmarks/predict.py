"""Predict latency: HTTP p50/p99 for 1 and 256 instances against in-process calls.

Trains the quickstart on mnist-sample for one epoch through trainq, downloads the model, then
times, in this run: POST /predict over HTTP (one client, keep-alive), `model(x)` in process,
and `model.predict(x)` in process.

    .venv/bin/python -m benchmarks.predict [--requests 200]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import median, pct, row, service
from shared.datasets.builtin import load

ROOT = Path(__file__).resolve().parent.parent


def _time(fn: Any, n: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    """Print p50/p99 in milliseconds and the ratios the targets speak of."""
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--requests", type=int, default=200)
    n = args.parse_args().requests
    spec = json.loads((ROOT / "examples" / "quickstart.json").read_text())
    spec["fit"]["epochs"] = 1
    x_test = load("mnist-sample").x_test
    assert x_test is not None
    with service() as bench, tempfile.TemporaryDirectory() as tmp:
        job_id = bench.submit(spec)
        bench.wait(job_id)
        url = f"{bench.url}/api/v1/jobs/{job_id}"
        model_file = Path(tmp) / "m.keras"
        model_file.write_bytes(bench.http.get(f"{url}/model", headers=bench.headers[0]).content)
        import keras

        model = keras.models.load_model(model_file)
        results: dict[str, dict[str, list[float]]] = {}
        for size in (1, 256):
            raw = x_test[:size]
            body = {"instances": raw.tolist()}
            x = raw.astype("float32") / 255.0

            def http(body: dict[str, Any] = body) -> None:
                r = bench.http.post(f"{url}/predict", json=body, headers=bench.headers[0])
                r.raise_for_status()

            results[str(size)] = {
                "http": _time(http, n),
                "call": _time(lambda x=x: model(x, training=False), n),
                "predict": _time(lambda x=x: model.predict(x, verbose=0), max(n // 4, 20)),
            }
    print("predict: quickstart model, milliseconds")
    for size, r in results.items():
        for kind, values in r.items():
            row(f"{size} instance(s), {kind}: p50", median(values), "ms")
            row(f"{size} instance(s), {kind}: p99", pct(values, 99), "ms")
    one = results["1"]
    row(
        "1 instance: HTTP p50 / model(x) p50 (target <= 2)",
        median(one["http"]) / median(one["call"]),
    )
    row(
        "1 instance: model.predict p50 / HTTP p50 (target >= 10)",
        median(one["predict"]) / median(one["http"]),
    )


if __name__ == "__main__":
    main()
