"""A job's TensorBoard logs as a .tar.gz archive that `tensorboard --logdir` opens."""

from __future__ import annotations

import io
import tarfile
import time

from flask import Blueprint, send_file
from flask.typing import ResponseReturnValue

from shared import artifacts, storage
from shared.errors import NotFound
from shared.jobs import queries
from web.auth import current_user
from web.extensions import db, settings

bp = Blueprint("tensorboard", __name__)


@bp.get("/<job_id>/tensorboard")
def tensorboard(job_id: str) -> ResponseReturnValue:
    """The job's logs so far (train/ and validation/), under a folder named after the job."""
    job = queries.get_job(db(), current_user(), job_id, history=False)
    store = storage.artifacts(settings(), wait=storage.REQUEST_WAIT_SECONDS)
    missing = NotFound(f"job {job_id} has no TensorBoard logs yet (it has not started training)")
    buffer = io.BytesIO()
    if store.local is not None:
        folder = artifacts.tensorboard_dir(store.local, job.id)
        if not folder.is_dir():
            raise missing
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(folder, arcname=f"trainq-{job.id}")
    else:  # the logs the job's worker has put in the store so far
        prefix = f"{job.id}/tensorboard"
        keys = store.list(prefix)
        if not keys:
            raise missing
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for key in keys:
                data = store.read_bytes(key)
                info = tarfile.TarInfo(f"trainq-{job.id}/{key.removeprefix(prefix + '/')}")
                info.size, info.mtime = len(data), int(time.time())
                tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return send_file(buffer, mimetype="application/gzip", as_attachment=True,
                     download_name=f"trainq-{job.id}-tensorboard.tar.gz")  # fmt: skip
