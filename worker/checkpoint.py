"""A job's checkpoint: weights, optimizer state and the last finished epoch, kept per job.

It works like ``keras.callbacks.BackupAndRestore`` (restore in ``on_train_begin``, back up in
``on_epoch_end``, resume at the interrupted epoch through ``model._initial_epoch``), with three
differences a training service needs:

- each backup replaces the previous one atomically: the weights go to a new file named after
  the epoch, then ``checkpoint.json`` is swapped in pointing at it, so a process killed at any
  moment leaves a consistent (epoch, weights) pair;
- the backup holds the epoch's metrics, so an epoch checkpointed but not yet recorded in the
  database (killed in between) is recorded on resume instead of being trained again;
- it is not deleted in ``on_train_end`` (which also runs after a cancel or a shutdown): the
  worker removes it once the job has ended.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import keras

from shared.jobs import lifecycle
from worker.watch import Watch

log = logging.getLogger(__name__)
META = "checkpoint.json"


def read_meta(folder: Path) -> dict[str, Any] | None:
    """The checkpoint's description, or None when there is none yet."""
    try:
        meta: dict[str, Any] = json.loads((folder / META).read_text())
    except FileNotFoundError:
        return None
    return meta


def restore(model: Any, folder: Path) -> int:
    """Load the last finished epoch's weights and optimizer state; that epoch (0 if none)."""
    meta = read_meta(folder)
    if meta is None:
        return 0
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(folder / meta["weights"])
    return int(meta["epoch"])


def remove(folder: Path) -> None:
    """Delete a checkpoint once its job has ended."""
    shutil.rmtree(folder, ignore_errors=True)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Checkpoint(keras.callbacks.Callback):
    """Backs up every finished epoch of a job and resumes from the last one."""

    def __init__(self, watch: Watch) -> None:
        super().__init__()
        self.watch = watch
        self.folder = watch.checkpoint_dir
        self._started = 0.0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        epoch = restore(self.model, self.folder)
        meta = read_meta(self.folder)
        db, job_id, watch = self.watch.db, self.watch.job_id, self.watch
        recorded = watch.patiently(
            lambda: lifecycle.resumed(db, job_id, first_epoch=epoch + 1), "resume"
        )
        if meta is not None and recorded < epoch:
            # Killed after the backup but before the database heard of the epoch.
            watch.patiently(
                lambda: lifecycle.record_epoch(db, job_id, epoch, meta["logs"], meta["seconds"]),
                f"record epoch {epoch} from the checkpoint",
            )
        if epoch:
            self.model._initial_epoch = epoch
            log.info("job_id=%s resumed from checkpoint at epoch %d", job_id, epoch + 1)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.watch.interrupted:  # a partial epoch is not a finished one
            return
        seconds = time.perf_counter() - self._started
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch + 1:05d}.weights.h5"
        tmp = self.folder / f".tmp-{name}"
        self.model.save_weights(tmp, overwrite=True)
        os.replace(tmp, self.folder / name)
        metrics = lifecycle.clean_metrics(logs or {})
        self.watch.finished = (epoch + 1, seconds)
        meta = {"epoch": epoch + 1, "weights": name, "logs": metrics, "seconds": seconds}
        _write_atomically(self.folder / META, json.dumps(meta))
        for old in self.folder.glob("epoch-*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)
