"""Batch prediction of 1,000,000 rows: the worker's peak resident memory against the same batch
prediction of 100,000 rows (bounded: independent of the row count), and its throughput against
``model.predict`` in this process on the same rows, held in memory (target >= 0.8).

A small classifier (32 features, Dense 64, Dense 10) trains one epoch on an uploaded 100,000-row
dataset; then both datasets (100,000 and 1,000,000 rows of 32 float32 features) are predicted
through ``POST /api/v1/batch-predictions`` (the server's 10,000 rows a chunk unless
``--chunk-rows``), timed from the
job's start to its end as the service records them, and the result downloaded. In this
process the downloaded model predicts the same rows with ``model.predict`` (Keras's default
batch of 32, and a batch of 10,000 as the service's chunk).

nice -n 5 .venv/bin/python -m benchmarks.batch_predict [--rows 1000000 --small-rows 100000
    --rounds 3 --chunk-rows N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

import trainq
from benchmarks.big_dataset import largest_process_mib
from benchmarks.harness import median, row, service
from benchmarks.upload import Peak

FEATURES = 32
SPEC: dict[str, Any] = {
    "name": "batch-bench",
    "model": {"layers": [
        {"class_name": "Dense", "config": {"units": 64, "activation": "relu",
                                           "input_shape": [FEATURES]}},
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


def write_npz(path: Path, rows: int) -> None:
    """An uncompressed .npz of ``rows`` rows of float32 features (x_train) and their class
    (y_train, the arg max of the first ten features), written a block at a time."""
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        xs = z.open("x_train.npy", "w", force_zip64=True)
        np.lib.format.write_array_header_1_0(
            xs, {"descr": "<f4", "fortran_order": False, "shape": (rows, FEATURES)}
        )
        labels = []
        for first in range(0, rows, 100_000):
            block = rng.standard_normal((min(100_000, rows - first), FEATURES), np.float32)
            xs.write(block.tobytes())
            labels.append(block[:, :10].argmax(axis=1).astype(np.uint8))
        xs.close()
        with z.open("y_train.npy", "w", force_zip64=True) as ys:
            np.lib.format.write_array(ys, np.concatenate(labels))


def _seconds(job: dict[str, Any]) -> float:
    started, finished = (datetime.fromisoformat(job[k]) for k in ("started_at", "finished_at"))
    return (finished - started).total_seconds()


def main() -> None:
    """Train, predict both datasets through the service and in process; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="in-process timings (median)")
    parser.add_argument("--chunk-rows", type=int, default=None, help="the server's by default")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trainq-batch-") as tmp:
        _run(args, Path(tmp))


def _run(args: argparse.Namespace, tmp: Path) -> None:
    with service() as bench:
        token = bench.headers[0]["Authorization"].split()[1]
        client = trainq.Client(bench.url, token, timeout=3600)
        worker = bench.service.procs["worker"].pid
        datasets = {}
        for rows in (args.small_rows, args.rows):
            path = tmp / f"rows-{rows}.npz"
            write_npz(path, rows)
            datasets[rows] = client.upload_dataset(path, f"rows-{rows}")["id"]
            if rows != args.rows:
                path.unlink()
        model_job = bench.submit({**SPEC, "dataset": {"id": datasets[args.small_rows]}})
        bench.wait(model_job)
        figures: dict[int, tuple[float, float, float]] = {}
        for rows, dataset_id in datasets.items():
            time.sleep(3)
            idle = largest_process_mib(worker)
            body: dict[str, Any] = {"job_id": model_job, "dataset": {"id": dataset_id}}
            if args.chunk_rows:
                body["chunk_rows"] = args.chunk_rows
            with Peak(worker, largest_process_mib) as peak:
                r = bench.http.post(f"{bench.url}/api/v1/batch-predictions", json=body,
                                    headers=bench.headers[0])  # fmt: skip
                r.raise_for_status()
                url = f"{bench.url}/api/v1/batch-predictions/{r.json()['id']}"
                while (job := bench.http.get(url, headers=bench.headers[0]).json())["status"] in (
                    "queued",
                    "running",
                ):
                    time.sleep(0.2)
            if job["status"] != "succeeded":
                raise SystemExit(f"batch prediction {job['status']}: {job.get('error')}")
            figures[rows] = (idle, peak.peak, _seconds(job))
            result = tmp / f"result-{rows}.npz"
            result.write_bytes(bench.http.get(f"{url}/result", headers=bench.headers[0]).content)
        model_file = tmp / "model.keras"
        model_file.write_bytes(
            bench.http.get(f"{bench.url}/api/v1/jobs/{model_job}/model",
                           headers=bench.headers[0]).content
        )  # fmt: skip
    import keras

    model = keras.models.load_model(model_file)
    with np.load(tmp / f"rows-{args.rows}.npz") as data:
        x = data["x_train"]  # the rows in memory, as a user's script has them
    with np.load(tmp / f"result-{args.rows}.npz") as result:
        served = result["logits"]
    in_process = {}
    for batch_size in (32, 10_000):
        times = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            logits = model.predict(x, batch_size=batch_size, verbose=0)
            times.append(time.perf_counter() - started)
        in_process[batch_size] = median(times)
    same = float(np.abs(served - logits).max())

    chunk = f"{args.chunk_rows:,} rows a chunk" if args.chunk_rows else "the server's chunks"
    print(f"batch prediction: {args.rows:,} and {args.small_rows:,} rows of {FEATURES} features, "
          f"{chunk}")  # fmt: skip
    for rows, (idle, top, seconds) in figures.items():
        row(f"{rows:,} rows: worker's largest process idle", idle, "MiB")
        row(f"{rows:,} rows: its peak while predicting", top, "MiB")
        row(f"{rows:,} rows: job time (started to finished)", seconds, "s")
        row(f"{rows:,} rows: throughput", rows / seconds, "rows/s")
    big, small = figures[args.rows], figures[args.small_rows]
    row(f"peak {args.rows:,} rows / {args.small_rows:,} rows (bounded: about 1)", big[1] / small[1])
    for batch_size, seconds in in_process.items():
        row(f"in-process model.predict, batch {batch_size:,} (median of {args.rounds})", seconds,
            "s")  # fmt: skip
        row(f"  throughput service / in-process batch {batch_size:,} (target >= 0.8)",
            seconds / big[2])  # fmt: skip
    row("largest |service logits - model.predict logits|", same)


if __name__ == "__main__":
    main()
