"""Keras callbacks that report a running job to the database and stop it when asked."""

from __future__ import annotations

import logging
import math
from typing import Any

import keras

from shared import artifacts, storage
from shared.jobs import lifecycle
from shared.sweeps import service as sweeps
from worker.checkpoint import Checkpoint
from worker.uploads import Upload
from worker.watch import Stop, Watch

log = logging.getLogger(__name__)


class EpochRecorder(keras.callbacks.Callback):
    """Records every finished epoch as it ends: every metric in its logs (with what the spec's
    callbacks, which run before it, add there: the learning rate), and its duration as the
    checkpoint, which runs first, timed it."""

    def __init__(self, watch: Watch) -> None:
        super().__init__()
        self.watch = watch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        finished = self.watch.finished
        if self.watch.interrupted or finished is None or finished[0] != epoch + 1:
            return  # stopped inside this epoch: neither checkpointed nor recorded
        number, seconds = finished
        metrics = dict(logs or {})
        # Training waits here while the database is away: epochs are recorded in order, once.
        self.watch.patiently(
            lambda: lifecycle.record_epoch(
                self.watch.db, self.watch.job_id, number, metrics, seconds
            ),
            f"record epoch {number}",
        )
        # A sweep's trial: its pruner may stop it here, after this recorded epoch (not after
        # its last: it has ended anyway).
        trial = self.watch.sweep_id is not None and number < self.params.get("epochs", 0)
        if trial and self.watch.patiently(
            lambda: sweeps.judge_epoch(self.watch.db, self.watch.job_id, number),
            f"judge epoch {number}",
        ):
            self.watch.pruned = True
            self.model.stop_training = True


class StopWhenAsked(keras.callbacks.Callback):
    """Stops training after the batch in progress on cancel, timeout or shutdown, or a NaN loss."""

    def __init__(self, watch: Watch) -> None:
        super().__init__()
        self.watch = watch
        self._epoch = 0

    def _check(self) -> None:
        if self.watch.should_stop():
            self.watch.interrupted = True
            self.model.stop_training = True

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._check()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        self._check()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.watch.stop(
                Stop.nan,
                f"NaN loss: the loss became {float(loss)} in epoch {self._epoch + 1}, batch "
                f"{batch + 1}; the training diverged (try a lower learning rate or scaled inputs)",
            )
        self._check()


def supervision(watch: Watch) -> list[keras.callbacks.Callback]:
    """The callbacks that resume, checkpoint and stop a watched job, in the order they must run.

    They go before the EpochRecorder: an epoch is checkpointed before it is recorded.
    """
    return [StopWhenAsked(watch), Checkpoint(watch)]


class LogSync(keras.callbacks.Callback):
    """Puts a job's TensorBoard logs in a remote store at each epoch's end and at the end, so
    the API can serve them from any host; in the background (``worker.uploads``: the job waits
    for the last one before it ends); a store that is away costs the logs, not the job (the
    checkpoint's upload fails a job whose store stays away)."""

    def __init__(self, watch: Watch, board: keras.callbacks.TensorBoard):
        super().__init__()
        self.watch, self.board, self.job_id = watch, board, watch.job_id
        self.store = storage.artifacts(watch.settings)
        self.folder = artifacts.tensorboard_dir(watch.settings.artifacts, watch.job_id)
        self.seen: dict[str, tuple[int, int]] = {}

    def _sync(self) -> None:
        if not self.folder.is_dir():
            return
        try:
            self.store.sync_up(self.folder, f"{self.job_id}/tensorboard", self.seen)
        except storage.StoreUnavailable as exc:
            log.warning("job_id=%s TensorBoard logs not stored: %s", self.job_id, exc)

    def _submit(self) -> None:
        for writer in getattr(self.board, "_writers", {}).values():
            writer.flush()  # the epoch's summaries are on disk, not in the writer's buffer
        self.watch.uploads.submit("logs", Upload(self._sync))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._submit()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._submit()
