"""A job's checkpoint: weights, optimizer state and the last finished epoch, kept per job.

It works like ``keras.callbacks.BackupAndRestore`` (restore in ``on_train_begin``, back up in
``on_epoch_end``, resume at the interrupted epoch through ``model._initial_epoch``), with the
differences a training service needs:

- each backup replaces the previous one atomically: the weights go to a new file named after
  the epoch, then ``checkpoint.json`` is swapped in pointing at it, so a process killed at any
  moment leaves a consistent (epoch, weights) pair;
- the backup holds the epoch's metrics, so an epoch checkpointed but not yet recorded in the
  database (killed in between) is recorded on resume instead of being trained again;
- the epoch before it is kept too (``previous``): a checkpoint whose weights are corrupt or
  missing resumes from the one before, and one with neither from the start;
- with a remote store (``TRAINQ_STORAGE_URL``) each backup is uploaded when its epoch ends,
  weights first, then ``checkpoint.json``, so that another host can resume from it (while
  the next epoch trains, newest first: ``worker.uploads``; a job stopped early waits for it):
  a job taken on a host without the local folder fetches it from the store first (:func:`pull`);
- it is not deleted in ``on_train_end`` (which also runs after a cancel or a shutdown): the
  worker removes it once the job has ended (:func:`discard`).
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

from shared import artifacts, storage
from shared.jobs import lifecycle
from shared.settings import Settings
from worker.uploads import Upload
from worker.watch import Watch, checkpoint_dir

log = logging.getLogger(__name__)
META = "checkpoint.json"


def _key(job_id: str, name: str = "") -> str:
    return f"{job_id}/checkpoint/{name}".rstrip("/")


def read_meta(folder: Path) -> dict[str, Any] | None:
    """The checkpoint's description, or None when there is none yet (or it cannot be read)."""
    try:
        meta: dict[str, Any] = json.loads((folder / META).read_text())
    except FileNotFoundError:
        return None
    except (ValueError, OSError) as exc:
        log.warning("checkpoint %s cannot be read (%s); starting from the start", folder, exc)
        return None
    return meta if isinstance(meta, dict) and "epoch" in meta else None


def _entries(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The checkpoint's backups, newest first."""
    previous = meta.get("previous")
    return [meta, *([previous] if isinstance(previous, dict) else [])]


def restore_entry(model: Any, folder: Path) -> dict[str, Any] | None:
    """Load the newest backup whose weights load; that backup (None: start from scratch)."""
    meta = read_meta(folder)
    if meta is None:
        return None
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    initial = model.get_weights()
    for entry in _entries(meta):
        try:
            model.load_weights(folder / entry["weights"])
        except Exception as exc:  # corrupt, truncated or missing: try the one before
            log.warning("checkpoint %s epoch %s unusable (%s: %s)", folder, entry.get("epoch"),
                        type(exc).__name__, exc)  # fmt: skip
            model.set_weights(initial)
            continue
        return {k: v for k, v in entry.items() if k != "previous"}
    log.warning("checkpoint %s: no backup loads; training from the start", folder)
    return None


def restore(model: Any, folder: Path) -> int:
    """Load the last good epoch's weights and optimizer state; that epoch (0 if none)."""
    entry = restore_entry(model, folder)
    return int(entry["epoch"]) if entry else 0


def pull(settings: Settings, job_id: str) -> None:
    """Fetch a job's checkpoint from a remote store when this host has none (the job trained
    elsewhere before); a missing or unreadable stored one leaves the job to start afresh."""
    store, folder = storage.artifacts(settings), checkpoint_dir(settings, job_id)
    if store.local is not None or read_meta(folder) is not None:
        return
    try:
        meta = json.loads(store.read_bytes(_key(job_id, META)))
    except FileNotFoundError:
        return
    except ValueError:
        log.warning("job_id=%s the stored checkpoint cannot be read; starting afresh", job_id)
        return
    for entry in _entries(meta):
        try:
            store.get(_key(job_id, entry["weights"]), folder / entry["weights"])
        except (FileNotFoundError, KeyError, TypeError):
            log.warning("job_id=%s stored checkpoint of epoch %s is missing its weights",
                        job_id, entry.get("epoch"))  # fmt: skip
    _write_atomically(folder / META, json.dumps(meta))
    log.info("job_id=%s checkpoint of epoch %s fetched from the store", job_id, meta["epoch"])


def discard(settings: Settings, job_id: str) -> None:
    """Delete a checkpoint once its job has ended, here and in the store; with a remote store
    the job's local folder goes too (what it kept is in the store)."""
    store = storage.artifacts(settings)
    if store.local is not None:
        shutil.rmtree(checkpoint_dir(settings, job_id), ignore_errors=True)
        return
    shutil.rmtree(artifacts.job_dir(settings.artifacts, job_id), ignore_errors=True)
    try:
        store.delete_prefix(_key(job_id))
    except storage.StoreUnavailable:
        log.warning("job_id=%s its stored checkpoint is left behind: the store is unreachable",
                    job_id)  # fmt: skip


def _write_atomically(path: Path, text: str) -> None:
    # Replaced whole, never seen half-written by a process killed meanwhile. Not fsynced (that
    # cost ~0.1 s an epoch on a busy disk): after a power cut an unreadable description only
    # means starting the job afresh (read_meta), as the weights beside it are not fsynced either.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(text)
    os.replace(tmp, path)


class Checkpoint(keras.callbacks.Callback):
    """Backs up every finished epoch of a job and resumes from the last good one."""

    def __init__(self, watch: Watch) -> None:
        super().__init__()
        self.watch = watch
        self.folder = watch.checkpoint_dir
        self.store = storage.artifacts(watch.settings)
        self._started = 0.0
        self._last: dict[str, Any] | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        entry = restore_entry(self.model, self.folder)
        self._last = entry
        epoch = int(entry["epoch"]) if entry else 0
        db, job_id, watch = self.watch.db, self.watch.job_id, self.watch
        recorded = watch.patiently(
            lambda: lifecycle.resumed(db, job_id, first_epoch=epoch + 1), "resume"
        )
        if entry is not None and recorded < epoch:
            # Killed after the backup but before the database heard of the epoch.
            watch.patiently(
                lambda: lifecycle.record_epoch(db, job_id, epoch, entry["logs"], entry["seconds"]),
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
        if self.store.struggling:  # training runs no further ahead of a store that is away
            self.watch.uploads.wait("checkpoint")
        self.watch.uploads.raise_failure("checkpoint")  # an earlier epoch's, the store away
        seconds = time.perf_counter() - self._started
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch + 1:05d}.weights.h5"
        tmp = self.folder / f".tmp-{name}"
        self.model.save_weights(tmp, overwrite=True)
        os.replace(tmp, self.folder / name)
        metrics = lifecycle.clean_metrics(logs or {})
        self.watch.finished = (epoch + 1, seconds)
        meta: dict[str, Any] = {"epoch": epoch + 1, "weights": name, "logs": metrics,
                                "seconds": seconds}  # fmt: skip
        if self._last is not None and self._last["weights"] != name:
            meta["previous"] = self._last
        kept = {name, *(e["weights"] for e in _entries(meta))}
        _write_atomically(self.folder / META, json.dumps(meta))
        self._last = {k: v for k, v in meta.items() if k != "previous"}
        for old in self.folder.glob("epoch-*.weights.h5"):
            if old.name not in kept:
                old.unlink(missing_ok=True)
        if self.store.local is None:
            self._upload(name, kept, json.dumps(meta).encode())

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.watch.reason is not None:  # stopped early: resumed elsewhere from the last epoch
            self.watch.uploads.wait()

    def _upload(self, name: str, kept: set[str], meta: bytes) -> None:
        """Put the backup in the store while the next epoch trains (``worker.uploads``): the
        weights before the description that names them, then the older backups go. The
        weights are linked under another name first, so the next epochs' tidying cannot take
        them away mid-upload; a store that stays unreachable past TRAINQ_STORAGE_WAIT_SECONDS
        fails the job at the next epoch's end."""
        job_id, store = self.watch.job_id, self.store
        staged = self.folder / f".upload-{name}"
        staged.unlink(missing_ok=True)
        os.link(self.folder / name, staged)

        def run() -> None:
            try:
                store.put(staged, _key(job_id, name))
            finally:
                staged.unlink(missing_ok=True)
            store.put_bytes(_key(job_id, META), meta)
            for key in store.list(_key(job_id)):
                if key.rsplit("/", 1)[-1] not in kept | {META}:
                    store.delete(key)

        self.watch.uploads.submit("checkpoint", Upload(run, lambda: staged.unlink(missing_ok=True)))
