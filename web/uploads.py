"""Uploads in parts: start one, put its parts, see which arrived, complete it into a dataset."""

from __future__ import annotations

from flask import Blueprint, request, url_for
from flask.typing import ResponseReturnValue

from shared.datasets import resumable, uploads
from shared.errors import InvalidInput
from shared.jobs import quotas
from web import bodies, responses
from web.auth import current_user
from web.datasets import created
from web.extensions import db, settings
from web.schemas import UploadPart, UploadStart, UploadStatus

bp = Blueprint("uploads", __name__)


def _status(upload_id: str) -> UploadStatus:
    return UploadStatus.model_validate(resumable.status(settings(), current_user(), upload_id))


@bp.post("")
def start() -> ResponseReturnValue:
    """Start an upload of ``size`` bytes (JSON {"size", "name"}): 201 with its id."""
    body = UploadStart.model_validate(request.get_json(silent=True) or {})
    user, session = current_user(), db()
    quotas.admit_upload(session, user, body.size, settings())  # counted now, and at complete
    session.commit()
    upload = resumable.start(settings(), user, body.name, body.size)
    location = url_for("uploads.get", upload_id=upload["id"])
    return responses.body(UploadStatus.model_validate(upload)), 201, {"Location": location}


@bp.get("/<upload_id>")
def get(upload_id: str) -> ResponseReturnValue:
    """Which parts arrived (their sizes and hashes): where to resume."""
    return responses.body(_status(upload_id))


@bp.put("/<upload_id>/parts/<int:n>")
def put_part(upload_id: str, n: int) -> ResponseReturnValue:
    """One part's bytes, the raw body, streamed to disk; sent again, it replaces the part."""
    request.max_content_length = settings().upload_part_bytes  # 413 as it streams
    part = resumable.put_part(settings(), current_user(), upload_id, n, request.stream,
                              request.content_length)  # fmt: skip
    return responses.body(UploadPart.model_validate(part))


def _expected_sha256() -> str | None:
    """The SHA-256 the client computed, if its body gives one: {"sha256": "<64 hex digits>"}."""
    if not request.get_data(cache=True):
        return None
    body = bodies.json_body()
    if not isinstance(body, dict) or not isinstance(body.get("sha256", ""), str):
        raise InvalidInput(
            'send no body, or {"sha256": "<the file\'s SHA-256 in hex>"}',
            details={"field": "sha256"},
        )
    return body.get("sha256") or None


@bp.post("/<upload_id>/complete")
def complete(upload_id: str) -> ResponseReturnValue:
    """Join the parts, check them as any upload, create the dataset (201); an upload the checks
    refuse is deleted with its parts."""
    expected = _expected_sha256()
    user, session = current_user(), db()
    name, spool = resumable.assemble(settings(), user, upload_id)
    with spool:
        spooled = spool.done()
        try:
            resumable.completed(settings(), spooled, expected)
            quotas.admit_upload(session, user, spooled.size, settings(), spend=False)
            dataset = uploads.create(session, user, name, spooled, settings())
        except InvalidInput:
            resumable.discard(settings(), upload_id)  # nothing kept of a refused upload
            raise
        session.commit()
    resumable.discard(settings(), upload_id)
    return created(dataset)


@bp.delete("/<upload_id>")
def delete(upload_id: str) -> ResponseReturnValue:
    """Give an upload up: its parts are deleted."""
    resumable.delete(settings(), current_user(), upload_id)
    return "", 204
