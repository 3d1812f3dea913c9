"""The protocols' predict and the batching of concurrent predicts.

Trains the quickstart on mnist-sample for one epoch through trainq and registers it as model
"digits", then, in one run:

1. one instance, one client (keep-alive): p50 through TF Serving's path
   (``/v1/models/digits:predict``) and the Open Inference Protocol's
   (``/v2/models/digits/infer``), each ÷ the native ``/api/v1/jobs/{id}/predict``; the three
   are timed in turn, round after round, and the ratios are the medians of the rounds';
2. 16 concurrent clients sending one instance each: requests a second and p99 through the API
   as it is and through the same API with concurrent predicts batched
   (``benchmarks.batched_wsgi``, on the same database, Redis and files; gunicorn as
   ``trainq up`` starts it), each measured in turn, round after round.

    .venv/bin/python -m benchmarks.protocols [--rounds 5] [--requests 200] [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from sqlalchemy import select

from benchmarks.harness import median, pct, row, service
from shared.datasets.builtin import load
from shared.db import session_scope
from shared.models import User
from shared.registry import service as registry
from shared.settings import Settings
from tests.support import ROOT, Service, wait_until

CLIENTS = 16


def _timed(call: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _post(session: requests.Session, url: str, body: Any, headers: dict[str, str]) -> None:
    r = session.post(url, json=body, headers=headers, timeout=30)
    r.raise_for_status()


def _load(url: str, body: Any, headers: dict[str, str], seconds: float) -> tuple[float, float]:
    """Requests a second and p99 (ms) of CLIENTS clients posting for ``seconds``."""
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    start = threading.Barrier(CLIENTS + 1)

    def client(mine: list[float]) -> None:
        session = requests.Session()
        _post(session, url, body, headers)  # connected and warm before the clock starts
        start.wait()
        stop = time.perf_counter() + seconds
        while time.perf_counter() < stop:
            t = time.perf_counter()
            _post(session, url, body, headers)
            mine.append((time.perf_counter() - t) * 1000)

    threads = [threading.Thread(target=client, args=(m,)) for m in latencies]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    every = [v for m in latencies for v in m]
    return len(every) / (time.perf_counter() - began), pct(every, 99)


def _batched_api(svc: Service) -> str:
    """The batched API beside the plain one, as `trainq up` starts gunicorn."""
    batched = Service(svc.db_url, svc.redis_url, svc.var_dir)
    batched.env = dict(svc.env)  # the same settings, database, Redis and files
    defaults = Settings()
    batched._spawn("web-batched", ["gunicorn", "-c", str(ROOT / "web" / "gunicorn_conf.py"),
                   "benchmarks.batched_wsgi:app", "--bind", f"127.0.0.1:{batched.port}",
                   "--workers", str(defaults.web_workers), "--threads", str(defaults.web_threads),
                   "--no-control-socket"])  # fmt: skip
    svc.procs["web-batched"] = batched.procs["web-batched"]  # stopped with the rest
    wait_until(batched._healthy, 60, "the batched API to answer")
    return batched.url


def main() -> None:
    """Print the p50s, their ratios, and the batching figures."""
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--rounds", type=int, default=5)
    args.add_argument("--requests", type=int, default=200)
    args.add_argument("--seconds", type=float, default=5.0)
    opts = args.parse_args()
    spec = json.loads((ROOT / "examples" / "quickstart.json").read_text())
    spec["fit"]["epochs"] = 1
    x_test = load("mnist-sample").x_test
    assert x_test is not None
    image = x_test[:1].astype("float32")
    with service() as bench:
        job_id = bench.submit(spec)
        bench.wait(job_id)
        with session_scope(bench.service.db_url) as s:
            owner = s.scalar(select(User).where(User.name == "bench0"))
            registry.register(s, owner, "digits", job_id)
        h = bench.headers[0]
        native = (f"{bench.url}/api/v1/jobs/{job_id}/predict", {"instances": image.tolist()})
        tf = (f"{bench.url}/v1/models/digits:predict", {"instances": image.tolist()})
        tensor = {"name": "x", "shape": [1, 28, 28], "datatype": "FP32",
                  "data": image.reshape(-1).tolist()}  # fmt: skip
        v2 = (f"{bench.url}/v2/models/digits/infer", {"inputs": [tensor]})
        paths = {"native": native, "tf": tf, "v2": v2}
        for url, body in paths.values():
            _timed(lambda url=url, body=body: _post(bench.http, url, body, h), 20)  # warm-up
        p50s: dict[str, list[float]] = {k: [] for k in paths}
        for _ in range(opts.rounds):
            for name, (url, body) in paths.items():
                call = lambda url=url, body=body: _post(bench.http, url, body, h)  # noqa: E731
                p50s[name].append(median(_timed(call, opts.requests)))
        batched_url = _batched_api(bench.service)
        plain_rps, plain_p99, batch_rps, batch_p99 = [], [], [], []
        for _ in range(opts.rounds):
            rps, p99 = _load(native[0], native[1], h, opts.seconds)
            plain_rps.append(rps), plain_p99.append(p99)
            rps, p99 = _load(native[0].replace(bench.url, batched_url), native[1], h, opts.seconds)
            batch_rps.append(rps), batch_p99.append(p99)
    print(f"protocols: quickstart model, 1 instance, medians of {opts.rounds} rounds")
    for name in paths:
        row(f"{name}: p50", median(p50s[name]), "ms")
    for name in ("tf", "v2"):
        ratios = [a / b for a, b in zip(p50s[name], p50s["native"], strict=True)]
        row(f"{name} p50 / native p50 (target <= 1.1)", median(ratios))
    row(f"{CLIENTS} clients, no batching: requests/s", median(plain_rps))
    row(f"{CLIENTS} clients, no batching: p99", median(plain_p99), "ms")
    row(f"{CLIENTS} clients, batching: requests/s", median(batch_rps))
    row(f"{CLIENTS} clients, batching: p99", median(batch_p99), "ms")
    ratios = [a / b for a, b in zip(batch_rps, plain_rps, strict=True)]
    row("batching / no batching, requests/s (keep if >= 1.5)", median(ratios))
    print("  per round: no batching", [round(v) for v in plain_rps], [round(v) for v in plain_p99],
          "batching", [round(v) for v in batch_rps], [round(v) for v in batch_p99])  # fmt: skip


if __name__ == "__main__":
    main()
