"""Polling: status requests per second from 16 clients while a job trains, and its slowdown.

Trains the quickstart on mnist-sample twice: once alone, once while 16 threads poll
GET /api/v1/jobs/{id}. Prints requests/s and the ratio of the two runs' seconds per epoch.

    .venv/bin/python -m benchmarks.polling [--epochs 6] [--clients 16]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import requests

from benchmarks.harness import Bench, median, row, service

ROOT = Path(__file__).resolve().parent.parent


def _epoch_seconds(job: dict) -> float:  # type: ignore[type-arg]
    durations = [h["duration_s"] for h in job["history"]]
    return median(durations[1:] or durations)


def _poll(bench: Bench, job_id: str, clients: int, stop: threading.Event) -> int:
    counts = [0] * clients

    def client(i: int) -> None:
        http = requests.Session()
        url = f"{bench.url}/api/v1/jobs/{job_id}"
        while not stop.is_set():
            http.get(url, headers=bench.headers[0]).raise_for_status()
            counts[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    stop.wait()
    for t in threads:
        t.join()
    return sum(counts)


def main() -> None:
    """Print requests/s while training and the training slowdown."""
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--epochs", type=int, default=6)
    args.add_argument("--clients", type=int, default=16)
    opts = args.parse_args()
    spec = json.loads((ROOT / "examples" / "quickstart.json").read_text())
    spec["fit"]["epochs"] = opts.epochs
    with service() as bench:
        alone = bench.wait(bench.submit(spec))
        time.sleep(10)  # a warm child again
        job_id = bench.submit(spec)
        stop = threading.Event()
        result: list[int] = []
        poller = threading.Thread(
            target=lambda: result.append(_poll(bench, job_id, opts.clients, stop))
        )
        started = time.perf_counter()
        poller.start()
        polled = bench.wait(job_id)
        stop.set()
        poller.join()
        seconds = time.perf_counter() - started
    rate = result[0] / seconds
    slowdown = _epoch_seconds(polled) / _epoch_seconds(alone)
    print(f"polling: {opts.clients} clients while the quickstart trains")
    row("status requests per second (target >= 1000)", rate, "req/s")
    row("s/epoch alone", _epoch_seconds(alone), "s")
    row("s/epoch while polled", _epoch_seconds(polled), "s")
    row("training slowdown, ratio (target <= 1.15)", slowdown)


if __name__ == "__main__":
    main()
