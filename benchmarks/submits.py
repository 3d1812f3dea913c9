"""Submits: another user's status polls while one user sends 16 heavy specs at once, and the
submissions per second the API accepts from 20 users while a job trains.

The service runs as `trainq up` runs it (2 API processes of 8 threads at SCHED_IDLE, each with
its check processes; one training slot). The heavy burst is 16 distinct specs at once from one
user: 8 refused by their budget (a Dense layer of a million units and more) and 8 that build
(three Dense layers of about 2,000 units each). Meanwhile another user polls a finished job's
status as fast as it is answered; its latencies are the figure. Then, with a job training, 20
users each submit the quickstart (one epoch; the rate limit raised) for --seconds, as fast as
they are answered.

    .venv/bin/python -m benchmarks.submits [--seconds 10]
"""

from __future__ import annotations

import argparse
import copy
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from benchmarks.harness import Bench, pct, row, service

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART: dict[str, Any] = json.loads((ROOT / "examples" / "quickstart.json").read_text())


def _spec(epochs: int = 1, name: str = "bench", **layers: Any) -> dict[str, Any]:
    spec = copy.deepcopy(QUICKSTART)
    spec["fit"]["epochs"] = epochs
    spec["name"] = name
    if layers:
        spec["model"]["layers"] = [spec["model"]["layers"][0], *layers["dense"],
                                   {"class_name": "Dense", "config": {"units": 10}}]  # fmt: skip
    return spec


def _heavy(i: int) -> dict[str, Any]:
    if i % 2:
        return _spec(dense=[{"class_name": "Dense", "config": {"units": 10**6 + i}}])
    units = 2000 + i
    return _spec(dense=[{"class_name": "Dense", "config": {"units": units}}] * 3)


def _post(bench: Bench, spec: dict[str, Any], user: int) -> tuple[int, float]:
    started = time.perf_counter()
    r = requests.post(
        f"{bench.url}/api/v1/jobs", json=spec, headers=bench.headers[user], timeout=300
    )
    return r.status_code, time.perf_counter() - started


def burst(bench: Bench, job_id: str) -> None:
    stop = threading.Event()
    polls: list[float] = []

    def poll() -> None:
        http = requests.Session()
        url = f"{bench.url}/api/v1/jobs/{job_id}"
        while not stop.is_set():
            started = time.perf_counter()
            r = http.get(url, headers=bench.headers[1], timeout=60)
            polls.append(time.perf_counter() - started)
            if r.status_code != 200:
                raise SystemExit(f"poll answered {r.status_code}")

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(1.0)
    baseline = len(polls)
    answers: list[tuple[int, float]] = []
    gate = threading.Barrier(16)

    def one(i: int) -> None:
        gate.wait()
        answers.append(_post(bench, _heavy(i), 0))

    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - started
    stop.set()
    poller.join()
    during = polls[baseline:]
    print("16 heavy specs at once from one user; another user's status polls meanwhile:")
    row("burst wall time", took, "s")
    print(f"  answers: {dict(Counter(s for s, _ in answers))}")
    row("slowest submit answer", max(t for _, t in answers), "s")
    row("status polls during the burst", len(during))
    row("poll p50", pct(during, 50) * 1000, "ms")
    row("poll p95", pct(during, 95) * 1000, "ms")
    row("poll max", max(during) * 1000, "ms")


def throughput(bench: Bench, seconds: float) -> None:
    long_job = bench.submit(_spec(epochs=500, name="training"), user=21)
    while bench.get(long_job, 21)["status"] != "running":
        time.sleep(0.2)
    stop = time.perf_counter() + seconds
    counts: Counter[int] = Counter()
    lock = threading.Lock()

    def user(u: int) -> None:
        http = requests.Session()
        n = 0
        while time.perf_counter() < stop:
            n += 1
            r = http.post(f"{bench.url}/api/v1/jobs", json=_spec(name=f"u{u}-{n}"),
                          headers=bench.headers[u], timeout=120)  # fmt: skip
            with lock:
                counts[r.status_code] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=user, args=(u,)) for u in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - started
    print(f"20 users submitting the quickstart for {seconds:g} s while a job trains:")
    print(f"  answers: {dict(counts)}")
    row("accepted submissions per second", counts[202] / took, "/s")
    requests.post(f"{bench.url}/api/v1/jobs/{long_job}/cancel", headers=bench.headers[21])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with service(users=22, TRAINQ_SUBMIT_RATE="1000000", TRAINQ_MAX_QUEUED_JOBS="10000") as bench:
        first = bench.submit(_spec(name="warm"), user=1)  # waits for the check processes
        bench.wait(first, user=1, timeout=600)
        time.sleep(5)  # both API processes have their check processes ready
        burst(bench, first)
        throughput(bench, args.seconds)


if __name__ == "__main__":
    main()
