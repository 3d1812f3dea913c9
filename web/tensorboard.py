"""A job's TensorBoard logs as a .tar.gz archive that `tensorboard --logdir` opens."""

from __future__ import annotations

import io
import tarfile

from flask import Blueprint, send_file
from flask.typing import ResponseReturnValue

from shared import artifacts
from shared.errors import NotFound
from shared.jobs import queries
from web.auth import current_user
from web.extensions import db, settings

bp = Blueprint("tensorboard", __name__)


@bp.get("/<job_id>/tensorboard")
def tensorboard(job_id: str) -> ResponseReturnValue:
    """The job's logs so far (train/ and validation/), under a folder named after the job."""
    job = queries.get_job(db(), current_user(), job_id, history=False)
    folder = artifacts.tensorboard_dir(settings().artifacts, job.id)
    if not folder.is_dir():
        raise NotFound(f"job {job_id} has no TensorBoard logs yet (it has not started training)")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=f"trainq-{job.id}")
    buffer.seek(0)
    return send_file(buffer, mimetype="application/gzip", as_attachment=True,
                     download_name=f"trainq-{job.id}-tensorboard.tar.gz")  # fmt: skip
