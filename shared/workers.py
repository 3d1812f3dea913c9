"""The live training workers: each announces its slots and GPUs in Redis with a heartbeat.

A worker's announcement is a key of its own (``trainq:workers:<name>``) that expires a few
heartbeats after the worker stops renewing it, so a worker that dies or leaves stops counting
at once; the dispatcher hands out work against the slots of the workers announced now.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from dataclasses import asdict, dataclass, field

import redis

log = logging.getLogger(__name__)
KEY_PREFIX = "trainq:workers:"
QUEUE_PREFIX = "trainq.host."


@dataclass(frozen=True)
class Worker:
    """One training worker as it announces itself."""

    name: str  # its Celery node name, e.g. train@host
    host: str
    slots: int
    gpus: list[str] = field(default_factory=list)
    slot_gpus: list[list[str]] = field(default_factory=list)  # the GPU ids of each slot

    @property
    def queue(self) -> str:
        """The broker queue this worker alone consumes (besides the shared one)."""
        return queue_of(self.name)

    @property
    def gpus_per_slot(self) -> int:
        """GPUs every one of its slots owns."""
        return min((len(g) for g in self.slot_gpus), default=0)


def queue_of(name: str) -> str:
    """The queue of the worker named ``name``."""
    return f"{QUEUE_PREFIX}{name}"


def announce(client: redis.Redis, worker: Worker, ttl_seconds: float) -> None:
    """Say that this worker is alive, for ``ttl_seconds``."""
    client.set(KEY_PREFIX + worker.name, json.dumps(asdict(worker)), px=int(ttl_seconds * 1000))


def withdraw(client: redis.Redis, name: str) -> None:
    """Stop counting this worker now (it is shutting down)."""
    client.delete(KEY_PREFIX + name)


def live(client: redis.Redis) -> list[Worker]:
    """The workers announced now, by name."""
    keys = sorted(client.scan_iter(match=KEY_PREFIX + "*", count=1000))
    workers = []
    for raw in client.mget(keys) if keys else []:
        if raw is None:  # expired between the scan and the read
            continue
        try:
            d = json.loads(raw)
            workers.append(
                Worker(d["name"], d["host"], int(d["slots"]), list(d["gpus"]), d["slot_gpus"])
            )
        except (ValueError, KeyError, TypeError):
            log.warning("a worker announcement that cannot be read: %r", raw)
    return workers


def host_gpus(setting: str) -> list[str]:
    """This host's GPU ids: from TRAINQ_GPUS (ids like "0,1", or a count), else `nvidia-smi -L`."""
    setting = setting.strip()
    if setting.isdigit():
        return [str(i) for i in range(int(setting))]
    if setting:
        return [g.strip() for g in setting.split(",") if g.strip()]
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return []
    try:
        out = subprocess.run([binary, "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    # "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-...)"
    return [line.split(":")[0].split()[1] for line in out.splitlines() if line.startswith("GPU ")]


def split_gpus(gpus: list[str], slots: int) -> list[list[str]]:
    """An even split: each slot owns len(gpus) // slots GPUs of its own, in order; GPUs left
    over go unused (fewer GPUs than slots: no slot owns one)."""
    each = len(gpus) // max(slots, 1)
    return [gpus[i * each : (i + 1) * each] for i in range(slots)]
