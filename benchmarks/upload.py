"""A 1 GiB upload: throughput, and the API processes' peak resident memory above idle while
it streams in, in parts through the SDK and in one multipart request (target <= 100 MB).

nice -n 5 .venv/bin/python -m benchmarks.upload [--mib 1024]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import requests

import trainq
from benchmarks.harness import row, service
from benchmarks.memory import _rss_mib

ROW = 32 * 32 * 3  # bytes of one image, as CIFAR-10's


def write_npz(path: Path, mib: int) -> int:
    """An uncompressed .npz of about ``mib`` MiB of uint8 images (x_train) and labels
    (y_train), written chunk by chunk; how many samples."""
    n = mib * 1024 * 1024 // (ROW + 1)
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        for name, shape in (("x_train", (n, 32, 32, 3)), ("y_train", (n,))):
            with z.open(f"{name}.npy", "w", force_zip64=True) as f:
                header = {"descr": "|u1", "fortran_order": False, "shape": shape}
                np.lib.format.write_array_header_1_0(f, header)
                per_row, done = int(np.prod(shape[1:])), 0
                while done < n:
                    rows = min(8192, n - done)
                    high = 256 if name == "x_train" else 10
                    f.write(rng.integers(0, high, rows * per_row, dtype=np.uint8).tobytes())
                    done += rows
    return n


def api_rss_mib(master: int) -> float:
    """Resident memory of gunicorn's master and its workers, in MiB: the processes an upload
    streams through (not the submit-check processes the workers start, which load TensorFlow
    and never see an upload)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    total = 0
    for pid in (master, *map(int, children)):
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        total += next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    return total / 1024


class Peak:
    """The highest resident memory of processes, sampled every 50 ms."""

    def __init__(self, pid: int, measure: Callable[[int], float] = _rss_mib) -> None:
        self.pid, self.measure, self.peak, self._stop = pid, measure, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.measure(self.pid))
            time.sleep(0.05)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    """Upload the file twice (one request, then in parts); print the figures."""
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--mib", type=int, default=1024)
    mib = args.parse_args().mib
    with tempfile.TemporaryDirectory(prefix="trainq-upload-") as tmp:
        path = Path(tmp) / "big.npz"
        write_npz(path, mib)
        size = path.stat().st_size
        with service() as bench:
            web = bench.service.procs["web"].pid
            token = bench.headers[0]["Authorization"].split()[1]
            figures = {}
            for how in ("in parts", "one request"):
                time.sleep(2)
                idle = api_rss_mib(web)
                with Peak(web, api_rss_mib) as peak:
                    started = time.monotonic()
                    if how == "one request":
                        with path.open("rb") as f:
                            r = requests.post(f"{bench.url}/api/v1/datasets",
                                              files={"file": ("big.npz", f)},
                                              headers=bench.headers[0], timeout=3600)  # fmt: skip
                        r.raise_for_status()
                    else:
                        trainq.Client(bench.url, token, timeout=3600).upload_dataset(path, "big")
                    seconds = time.monotonic() - started
                figures[how] = (seconds, idle, peak.peak - idle)
    print(f"upload: a {size / 2**30:.2f} GiB .npz; gunicorn's master and workers, resident")
    for how, (seconds, idle, above) in figures.items():
        row(f"{how}: API idle before", idle, "MiB")
        row(f"{how}: throughput", size / 2**20 / seconds, "MiB/s")
        row(f"{how}: peak above idle (target <= 100 MB)", above, "MiB")


if __name__ == "__main__":
    main()
