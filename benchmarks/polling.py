"""Polling: status requests per second from 16 clients while a job trains, and its slowdown.

Each round trains the quickstart on mnist-sample three times: alone; while 16 clients poll
GET /api/v1/jobs/{id} as fast as they are answered (the requests/s the service sustains); and
while they poll at --rate requests/s together (what that load costs the training). The rounds
follow each other, so that a burst of other work on the shared machine falls on all three kinds
of run alike. Prints each round's ratio of seconds per epoch to the run alone, and the medians.

    .venv/bin/python -m benchmarks.polling [--epochs 20] [--clients 16] [--rate 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks.harness import Bench, median, row, service

ROOT = Path(__file__).resolve().parent.parent


def _epoch_seconds(job: dict) -> float:  # type: ignore[type-arg]
    durations = [h["duration_s"] for h in job["history"]]
    return median(durations[1:] or durations)


async def _client(
    url: str, path: str, token_header: str, stop: threading.Event, every: float = 0.0
) -> int:
    """One client on one kept-alive connection: a GET every `every` seconds (0: each as soon as
    the last is answered) until stopped; how many were answered."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {token_header}\r\n\r\n"
    ).encode()
    done = 0
    reader, writer = await asyncio.open_connection(host, port)
    due = time.perf_counter()
    try:
        while not stop.is_set():
            if every:
                due += every
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            if status != 200:
                raise SystemExit(f"status request answered {status}")
            done += 1
            if re.search(rb"(?i)connection: *close", head):
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()
    return done


def _poll(bench: Bench, job_id: str, clients: int, rate: float, stop: threading.Event) -> int:
    """Requests answered to `clients` concurrent clients until stopped, at `rate` requests/s
    together (0: as fast as they are answered).

    The clients stand for users on other machines. Here they share the two cores with the
    service and the training, so they are lean (raw HTTP/1.1 on kept-alive connections, one
    event loop) and run at the lowest CPU priority (SCHED_IDLE), as the API does under
    `trainq up`: they take as little as they can from the training they measure.
    """
    this_thread = threading.get_native_id()  # Linux: the priority of this thread only
    os.setpriority(os.PRIO_PROCESS, this_thread, 19)
    os.sched_setscheduler(this_thread, os.SCHED_IDLE, os.sched_param(0))

    async def everyone() -> int:
        header = bench.headers[0]["Authorization"]
        path = f"/api/v1/jobs/{job_id}"
        counts = await asyncio.gather(
            *(
                _client(bench.url, path, header, stop, clients / rate if rate else 0.0)
                for _ in range(clients)
            )
        )
        return sum(counts)

    return asyncio.run(everyone())


def _polled_run(bench: Bench, spec: dict, clients: int, rate: float) -> tuple[dict, float]:  # type: ignore[type-arg]
    """Train the spec while polled; the job and the requests per second answered."""
    job_id = bench.submit(spec)
    stop = threading.Event()
    result: list[int] = []
    poller = threading.Thread(
        target=lambda: result.append(_poll(bench, job_id, clients, rate, stop))
    )
    started = time.perf_counter()
    poller.start()
    job = bench.wait(job_id)
    stop.set()
    poller.join()
    return job, result[0] / (time.perf_counter() - started)


def main() -> None:
    """Print requests/s while training and the training slowdown, medians over the rounds."""
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--epochs", type=int, default=20)
    args.add_argument("--clients", type=int, default=16)
    args.add_argument("--rate", type=float, default=1000.0)
    args.add_argument("--rounds", type=int, default=5)
    opts = args.parse_args()
    spec = json.loads((ROOT / "examples" / "quickstart.json").read_text())
    spec["fit"]["epochs"] = opts.epochs
    alone, flat_out, paced, most, rates = [], [], [], [], []
    with service() as bench:
        bench.wait(bench.submit(spec))  # the first job of a process sets things up: not counted
        for _ in range(opts.rounds):  # interleaved, so that what else the machine does is shared
            alone.append(_epoch_seconds(bench.wait(bench.submit(spec))))
            job, rate = _polled_run(bench, spec, opts.clients, 0.0)
            flat_out.append(_epoch_seconds(job) / alone[-1])
            most.append(rate)
            job, rate = _polled_run(bench, spec, opts.clients, opts.rate)
            paced.append(_epoch_seconds(job) / alone[-1])
            rates.append(rate)
    print(f"polling: {opts.clients} clients while the quickstart trains, {opts.rounds} rounds")
    print("  slowdowns flat out:", " ".join(f"{r:.3f}" for r in flat_out))
    print(f"  slowdowns at {opts.rate:.0f} req/s:", " ".join(f"{r:.3f}" for r in paced))
    row("status requests per second, median (target >= 1000)", median(most), "req/s")
    row("s/epoch alone, median", median(alone), "s")
    row("slowdown flat out, median ratio", median(flat_out))
    row(f"slowdown at {median(rates):.0f} req/s, median ratio (target <= 1.15)", median(paced))


if __name__ == "__main__":
    main()
