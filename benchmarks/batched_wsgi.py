"""The API with concurrent predicts batched, for benchmarks.protocols only: each model's calls
that arrive while another batch runs wait up to ``TRAINQ_BENCH_BATCH_WAIT_MS`` for more, then go
to the model as one batch (as TF Serving's batching does), and each gets its rows back.

    gunicorn -c web/gunicorn_conf.py benchmarks.batched_wsgi:app
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from typing import Any

import numpy as np

from shared.ml import serving
from web import create_app

WAIT_S = float(os.environ.get("TRAINQ_BENCH_BATCH_WAIT_MS", "2")) / 1000
MAX_ROWS = 64
_unbatched = serving.Served.__call__


class _Batch:
    """The calls gathered for one model call, and their answers."""

    def __init__(self) -> None:
        self.calls: list[tuple[np.ndarray, ...]] = []
        self.done = threading.Event()
        self.outputs: list[list[np.ndarray]] = []


_state: dict[int, tuple[threading.Lock, list[_Batch]]] = {}
_guard = threading.Lock()


def _batched(self: serving.Served, *xs: np.ndarray) -> list[np.ndarray]:
    with _guard:
        lock, open_batch = _state.setdefault(id(self), (threading.Lock(), []))
        if open_batch and sum(len(c[0]) for c in open_batch[0].calls) < MAX_ROWS:
            batch, leader = open_batch[0], False
        else:
            batch, leader = _Batch(), True
            open_batch[:] = [batch]
        index = len(batch.calls)
        batch.calls.append(xs)
    if leader:
        time.sleep(WAIT_S)  # the others arriving meanwhile join this batch
        with _guard:
            if open_batch and open_batch[0] is batch:
                open_batch.clear()
        with lock:
            joined = [np.concatenate(parts) for parts in zip(*batch.calls, strict=True)]
            out = _unbatched(self, *joined)
        bounds = np.cumsum([0, *(len(c[0]) for c in batch.calls)])
        batch.outputs = [[o[a:b] for o in out] for a, b in itertools.pairwise(bounds)]
        batch.done.set()
    else:
        batch.done.wait()
    return batch.outputs[index]


serving.Served.__call__ = _batched  # type: ignore[method-assign]
app: Any = create_app()
