"""Datasets: upload an .npz, list, look up and delete your own."""

from __future__ import annotations

from flask import Blueprint, request, url_for
from flask.typing import ResponseReturnValue

from shared.datasets import uploads
from shared.errors import BadRequest
from shared.jobs import quotas
from web import responses
from web.auth import current_user
from web.extensions import db, settings
from web.schemas import DatasetList

bp = Blueprint("datasets", __name__)


@bp.post("")
def upload() -> ResponseReturnValue:
    """A multipart upload (field ``file``, optional ``name``): checked, stored, 201."""
    user = current_user()
    file = request.files.get("file")
    if file is None:
        raise BadRequest("send the .npz as multipart form data in a field named 'file'")
    name = request.form.get("name") or file.filename or "dataset"
    content, session = file.read(), db()
    quotas.admit_upload(session, user, len(content), settings())  # before any array is read
    dataset = uploads.create(session, user, name, content, settings())
    session.commit()
    location = url_for("datasets.get", dataset_id=dataset.id)
    return responses.body(responses.dataset(dataset)), 201, {"Location": location}


@bp.get("")
def list_datasets() -> ResponseReturnValue:
    """The caller's datasets, newest first."""
    found = uploads.list_for(db(), current_user())
    return responses.body(DatasetList(datasets=[responses.dataset(d) for d in found]))


@bp.get("/<dataset_id>")
def get(dataset_id: str) -> ResponseReturnValue:
    """One of the caller's datasets: shapes, dtypes, sample counts, content hash."""
    return responses.body(responses.dataset(uploads.get(db(), current_user(), dataset_id)))


@bp.delete("/<dataset_id>")
def delete(dataset_id: str) -> ResponseReturnValue:
    """Delete a dataset; 409 while a queued or running job uses it."""
    user = current_user()
    session = db()
    uploads.delete(session, user, dataset_id, settings())
    session.commit()
    return "", 204
