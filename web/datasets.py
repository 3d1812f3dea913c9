"""Datasets: upload an .npz, list, look up and delete your own."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Request, request, url_for
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field

from shared.datasets import spool, uploads
from shared.errors import BadRequest
from shared.jobs import quotas
from web import bodies, responses
from web.auth import current_user
from web.extensions import db, settings
from web.schemas import DatasetList

bp = Blueprint("datasets", __name__)
FORM_BYTES = 1024 * 1024  # what a multipart form may add to the file it carries


class SpoolingRequest(Request):
    """A request whose uploaded files are written to disk as they stream in, hashed on the way
    (werkzeug's form parser writes each part to the file this gives it); closed, they are gone."""

    def _get_file_stream(self, *args: Any, **kwargs: Any) -> Any:
        spooled = spool.Spool(spool.folder(settings()))
        self.__dict__.setdefault("_spools", []).append(spooled)
        return spooled

    def close(self) -> None:
        super().close()
        for spooled in self.__dict__.get("_spools", ()):  # a parse cut short leaves them too
            spooled.close()


def created(dataset: Any) -> ResponseReturnValue:
    """201 with the dataset and where it lives."""
    location = url_for("datasets.get", dataset_id=dataset.id)
    return responses.body(responses.dataset(dataset)), 201, {"Location": location}


@bp.post("")
def upload() -> ResponseReturnValue:
    """A multipart upload (field ``file``, optional ``name``), streamed to disk, checked,
    stored, 201."""
    user = current_user()
    request.max_content_length = settings().max_dataset_bytes + FORM_BYTES  # 413 as it streams
    file = request.files.get("file")
    if file is None:
        raise BadRequest("send the .npz as multipart form data in a field named 'file'")
    assert isinstance(file.stream, spool.Spool)
    name = request.form.get("name") or file.filename or "dataset"
    spooled, session = file.stream.done(), db()
    quotas.admit_upload(session, user, spooled.size, settings())  # before any array is read
    dataset = uploads.create(session, user, name, spooled, settings())
    session.commit()
    return created(dataset)


class _ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


@bp.get("")
def list_datasets() -> ResponseReturnValue:
    """The caller's datasets, newest first; ``?sha256=`` finds an upload of the same file."""
    found = uploads.list_for(db(), current_user(), bodies.query(_ListQuery).sha256)
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
