"""Batch predictions: submit one (a queued job), list, look up, follow its events, download
the result, cancel, delete."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, send_file, url_for
from flask.typing import ResponseReturnValue

from shared import caches, storage
from shared.batch import service
from shared.batch.spec import BatchRequest
from shared.db import describe, unavailable
from shared.errors import NotFound
from shared.jobs import dispatch, lifecycle, quotas
from shared.models import JobStatus
from web import bodies, events, responses
from web.auth import current_user
from web.batch_schemas import BatchPredictionList, batch_body
from web.extensions import db, queue, settings

log = logging.getLogger(__name__)
bp = Blueprint("batch_predictions", __name__)


@bp.post("")
def create() -> ResponseReturnValue:
    """Check, record and dispatch a batch prediction: 202 with it and its Location."""
    user, session = current_user(), db()  # a caller without a token: 401 before the body
    req = bodies.validated(BatchRequest)
    quotas.admit_submission(session, user, settings())
    job = service.create(session, user, req, settings())
    quotas.hold_quota(session, user, settings())  # 429 rolls it back
    session.commit()  # the database holds the job before the broker hears of it
    try:
        dispatch.dispatch(queue().db, settings(), queue().publish)
    except Exception as exc:  # recorded: 202; the periodic round hands it out
        if not unavailable(exc):
            raise
        log.warning("job_id=%s recorded; dispatch waits: %s", job.id, describe(exc))
    location = url_for("batch_predictions.get", batch_id=job.id)
    return responses.body(batch_body(job)), 202, {"Location": location}


@bp.get("")
def list_batch_predictions() -> ResponseReturnValue:
    """Your newest batch predictions."""
    rows = service.list_for(db(), current_user())
    return responses.body(BatchPredictionList(batch_predictions=[batch_body(r) for r in rows]))


@bp.get("/<batch_id>")
def get(batch_id: str) -> ResponseReturnValue:
    """Status, chunks done of all, and the bad rows by index."""
    session = db()
    job = service.get(session, current_user(), batch_id)
    n_bad, shown = service.bad_rows(session, batch_id)
    return responses.body(batch_body(job, n_bad, shown))


@bp.delete("/<batch_id>")
def delete(batch_id: str) -> ResponseReturnValue:
    """Delete a finished batch prediction with its result (409 while it may still run)."""
    session = db()
    service.delete(session, current_user(), batch_id, settings())
    session.commit()
    return "", 204


@bp.get("/<batch_id>/events")
def batch_events(batch_id: str) -> Response:
    """text/event-stream: its status changes and finished chunks, as a job's stream."""
    after = events.last_event_id()
    user = current_user()
    service.get(db(), user, batch_id)  # 404 unless it is the caller's
    state = current_app.extensions["trainq"]
    return events.open_stream(
        user.id,
        lambda: events.stream(state["sessions"], settings().redis_url, batch_id, after),
        f"GET /api/v1/batch-predictions/{batch_id}",
    )


@bp.get("/<batch_id>/result")
def result(batch_id: str) -> ResponseReturnValue:
    """The result .npz of a succeeded batch prediction (409 before)."""
    artifact = service.result(db(), current_user(), batch_id)
    store = storage.artifacts(settings(), wait=storage.REQUEST_WAIT_SECONDS)
    missing = NotFound(f"the result of batch prediction {batch_id} is missing from the store")
    try:
        path = caches.Cache.of(settings(), "results").fetch(store, artifact.path, artifact.sha256)
    except FileNotFoundError as exc:
        raise missing from exc
    if not path.is_file():
        raise missing
    return send_file(path, mimetype="application/octet-stream", as_attachment=True,
                     download_name=f"trainq-{batch_id}-predictions.npz")  # fmt: skip


@bp.post("/<batch_id>/cancel")
def cancel(batch_id: str) -> ResponseReturnValue:
    """Cancel a queued batch prediction at once (200); a running one after its chunk (202)."""
    session = db()
    job = service.get(session, current_user(), batch_id)
    status = lifecycle.request_cancel(session, batch_id, what="batch prediction")
    session.commit()
    session.refresh(job)
    n_bad, shown = service.bad_rows(session, batch_id)
    return responses.body(
        batch_body(job, n_bad, shown)
    ), 200 if status == JobStatus.cancelled else 202
