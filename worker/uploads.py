"""A job's uploads to a remote store, on a thread of their own so that training does not wait.

Each epoch's checkpoint and TensorBoard logs are put in the store while the next epoch trains.
Only the newest upload of each kind waits to run (a checkpoint superseded before its turn is
skipped: the newer one holds the later epoch); each kind has a thread of its own. A
checkpoint upload that fails (the store away past ``TRAINQ_STORAGE_WAIT_SECONDS``) is raised
in the training thread at the next epoch's end, so the job fails saying why, as when the
upload ran inline; while the store is failing (``Store.struggling``) an epoch's end waits for
the checkpoint upload under way, so training runs no further ahead of a store that is away.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class Upload:
    """One upload: ``run`` puts it in the store; ``skip`` tidies up when it is superseded."""

    run: Callable[[], None]
    skip: Callable[[], None] = field(default=lambda: None)


class Uploads:
    """The background uploads of one job: a thread per kind (``checkpoint``, ``logs``), each
    started on its kind's first upload, so that one kind never waits behind the other."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self._pending: dict[str, Upload] = {}  # kind -> the newest upload of that kind
        self._busy: set[str] = set()
        self._failed: dict[str, BaseException] = {}
        self._cond = threading.Condition()
        self._threads: dict[str, threading.Thread] = {}

    def submit(self, kind: str, upload: Upload) -> None:
        """Queue ``upload``, replacing a waiting one of the same kind."""
        with self._cond:
            superseded = self._pending.pop(kind, None)
            self._pending[kind] = upload
            if kind not in self._threads:
                self._threads[kind] = thread = threading.Thread(
                    target=self._run, args=(kind,), name=f"{kind}-{self.job_id}", daemon=True
                )
                thread.start()
            self._cond.notify_all()
        if superseded is not None:
            superseded.skip()

    def raise_failure(self, kind: str) -> None:
        """Raise the error of the last failed upload of ``kind`` (once), if there is one."""
        with self._cond:
            error = self._failed.pop(kind, None)
        if error is not None:
            raise error

    def drop(self, kind: str) -> None:
        """Forget the waiting upload of ``kind`` (one under way still finishes)."""
        with self._cond:
            upload = self._pending.pop(kind, None)
        if upload is not None:
            upload.skip()

    def wait(self, *kinds: str) -> None:
        """Let what is queued and under way of ``kinds`` (all by default) finish; errors are
        kept for ``raise_failure``."""
        with self._cond:
            self._cond.wait_for(
                lambda: (
                    not any(k in self._pending or k in self._busy for k in kinds)
                    if kinds
                    else not self._pending and not self._busy
                )
            )

    def _run(self, kind: str) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: kind in self._pending)
                upload = self._pending.pop(kind)
                self._busy.add(kind)
            try:
                upload.run()
                error = None
            except Exception as exc:  # kept for the training thread to raise
                log.warning("job_id=%s %s upload failed: %s", self.job_id, kind, exc)
                error = exc
            with self._cond:
                if error is not None:
                    self._failed[kind] = error
                else:
                    self._failed.pop(kind, None)
                self._busy.discard(kind)
                self._cond.notify_all()
