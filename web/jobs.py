"""Jobs: submit, look up, list, run again, predict with the trained model, download it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from flask import Blueprint, request, send_file, url_for
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import artifacts, caches, storage
from shared.db import describe, unavailable
from shared.errors import Conflict, InvalidInput, InvalidSpec, NotFound, TrainqError
from shared.jobs import dispatch, lifecycle, provenance, queries, quotas
from shared.ml import serving, submit_check
from shared.models import WITH_MODEL, JobStatus, Role, User
from shared.spec.job import JobSpec
from web import bodies, responses
from web.auth import bearer, current_token, current_user
from web.extensions import db, model_refs, models, queue, settings, status_cache
from web.schemas import JobPage, PredictRequest
from web.status_cache import STAMPS_KEY

log = logging.getLogger(__name__)
bp = Blueprint("jobs", __name__)


def _json_body(refused: type[TrainqError] = InvalidInput) -> Any:
    return bodies.json_body(refused)  # within the JSON limits, before pydantic sees it


@bp.post("")
def submit() -> ResponseReturnValue:
    """Validate and record a job, then hand it to the workers: 202 with the job."""
    user = current_user()
    # A bigger body is read no further than the limit: the spec's own, within every request's.
    request.max_content_length = min(settings().max_spec_bytes, settings().max_request_bytes)
    return _queued(user, JobSpec.model_validate(_json_body(InvalidSpec)))


def _queued(user: User, spec: JobSpec) -> ResponseReturnValue:
    """Check, record and dispatch a job of the user's: 202 with the job and its Location."""
    session = db()
    # The cheap checks first: the spec's size (spends no rate), then the user's quota and rate,
    # before its model is checked or built (a spec refused for its content still counts).
    submit_check.limits(spec, settings())
    quotas.admit_submission(session, user, settings())
    job = queries.create_job(session, user, spec, settings())
    quotas.hold_quota(session, user, settings())  # 429 rolls the job back
    session.commit()  # the database holds the job before the broker hears of it
    try:  # starts it now if a slot is free
        dispatch.dispatch(queue().db, settings(), queue().publish)
    except Exception as exc:  # the job is recorded: 202; the periodic round hands it out
        if not unavailable(exc):
            raise
        log.warning(
            "job_id=%s recorded; dispatch waits for the database: %s", job.id, describe(exc)
        )
    location = url_for("jobs.get", job_id=job.id)
    return responses.body(responses.job_summary(job)), 202, {"Location": location}


@bp.post("/<job_id>/rerun")
def rerun(job_id: str) -> ResponseReturnValue:
    """Submit a job's work again: its spec, the seed it trained with, the same data found by
    its SHA-256 (409 if it is gone): 202 with the new job."""
    user = current_user()
    spec = provenance.rerun_spec(db(), queries.get_job(db(), user, job_id, history=False))
    return _queued(user, spec)


# What a spec checked without its data stands on: a dataset every server names (never loaded).
_NO_DATA = {"name": "mnist-sample"}


@bp.post("/check")
def check() -> ResponseReturnValue:
    """Check a spec as submit does before it reads any data: 204, or submit's 400/413/422. Its
    ``dataset`` may be left out (remote_fit asks before it uploads the arrays)."""
    current_user()
    request.max_content_length = min(settings().max_spec_bytes, settings().max_request_bytes)
    body = _json_body(InvalidSpec)
    if isinstance(body, dict) and "dataset" not in body:
        body = {**body, "dataset": _NO_DATA}
    submit_check.limits(JobSpec.model_validate(body), settings())
    return "", 204


class _ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    page: int = Field(default=1, ge=1, le=1_000_000)
    per_page: int = Field(default=20, ge=1, le=100)
    status: JobStatus | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)
    created_after: bodies.QueryTime | None = None
    created_before: bodies.QueryTime | None = None
    all: Literal["true", "false"] = "false"  # as documented; "1" or "yes" is no answer


@bp.get("")
def list_jobs() -> ResponseReturnValue:
    """The caller's jobs (everyone's for an admin with ?all=true), newest first, paginated;
    by status, a part of the name, when created."""
    user = current_user()
    query = bodies.query(_ListQuery)
    everyone = query.all == "true"
    if everyone and user.role != Role.admin:
        raise InvalidInput(
            "only administrators may list every user's jobs", details={"field": "all"}
        )
    found, total = queries.list_jobs(
        db(),
        user,
        page=query.page,
        per_page=query.per_page,
        status=query.status,
        name=query.name,
        created=(query.created_after, query.created_before),
        everyone=everyone,
    )
    owners = queries.owner_names(db(), found) if everyone else None
    page = JobPage(
        jobs=[responses.listed_job(j, owners) for j in found],
        page=query.page,
        per_page=query.per_page,
        total=total,
        pages=(total + query.per_page - 1) // query.per_page,
    )
    return responses.body(page)


@bp.get("/<job_id>")
def get(job_id: str) -> ResponseReturnValue:
    """Status, progress (epoch k of n, percent, ETA), history, error; while queued, its place."""
    # Polls the cache can answer never get here (status_cache.FastPath); those that do bring
    # the stamps it read, before the database is (None: keep nothing).
    token, cache = bearer(), status_cache()
    read_stamps = request.environ.get(STAMPS_KEY)
    job = queries.get_job(db(), current_user(), job_id)
    place = dispatch.queue_info(db(), settings(), job)
    body = responses.body(responses.job_detail(job, place))
    cache.put(token, job, body, read_stamps, current_token().expires_at)
    return body


@bp.post("/<job_id>/cancel")
def cancel(job_id: str) -> ResponseReturnValue:
    """Cancel a queued job at once (200); a running one stops after its current batch (202)."""
    session = db()
    job = queries.get_job_for(session, current_user(), job_id, admin_ok=True)
    status = lifecycle.request_cancel(session, job_id)
    session.commit()
    session.refresh(job)
    body = responses.body(responses.cancelled_job(job))
    return body, 200 if status == JobStatus.cancelled else 202


def _model_file(job_id: str, fmt: str) -> tuple[Any, Any]:
    job = queries.get_job(db(), current_user(), job_id, history=False, artifacts=True)
    # A cancelled job keeps the model of its last finished epoch, if one finished.
    if job.status == JobStatus.cancelled and not job.artifacts:
        raise Conflict(
            f"job {job_id} was cancelled before its first epoch ended: it has no model",
            details={"status": str(job.status)},
        )
    if job.status not in WITH_MODEL:
        raise Conflict(
            f"job {job_id} is {job.status}; its model is available once it has succeeded",
            details={"status": str(job.status)},
        )
    artifact = next((a for a in job.artifacts if a.format == fmt), None)
    if artifact is None:
        raise NotFound(f"job {job_id} has no model in format {fmt!r}")
    return job, (_local_model(job_id, artifact.path, artifact.sha256), artifact)


def _local_model(job_id: str, key: str, sha256: str) -> Path:
    """The model file on this host: in the local store, or this host's cached copy."""
    store = storage.artifacts(settings(), wait=storage.REQUEST_WAIT_SECONDS)
    missing = NotFound(f"the model file of job {job_id} is missing from the artifact store")
    try:
        path = caches.Cache.of(settings(), "models").fetch(store, key, sha256)
    except FileNotFoundError as exc:
        raise missing from exc
    if not path.is_file():
        raise missing
    return path


@dataclass(frozen=True)
class _ModelRef:
    """What predict needs of a finished job: its model file and its preprocessing."""

    job_id: str
    path: Path
    sha256: str
    scale: float


def _kept_model(token: str, job_id: str) -> tuple[tuple[str, str] | None, _ModelRef | None]:
    # A finished job's model never changes: which one a token may call is kept under the Redis
    # stamps (web.status_cache), so repeated predicts skip the token and job queries.
    cache = model_refs()
    read_stamps = cache.stamps(job_id)
    ref: _ModelRef | None = cache.lookup(token, job_id, read_stamps)
    if ref is not None and not ref.path.is_file():
        ref = None
    return read_stamps, ref


def _read_model(token: str, job_id: str, read_stamps: tuple[str, str] | None) -> _ModelRef:
    job, (path, artifact) = _model_file(job_id, "keras")
    ref = _ModelRef(job.id, path, artifact.sha256, float(job.spec["dataset"].get("scale", 1.0)))
    model_refs().keep(token, job_id, ref, read_stamps, current_token().expires_at)
    return ref


@bp.post("/<job_id>/predict")
def predict(job_id: str) -> ResponseReturnValue:
    """Raw instances in, the job's preprocessing applied: logits, probabilities, classes out."""
    return native_predict(job_id)


def native_predict(job_id: str) -> dict[str, Any]:
    """The native predict of the request's body with the job's model (a registered model's
    version predicts through it too): the response body."""
    token = bearer()
    read_stamps, ref = _kept_model(token, job_id)
    if ref is None:
        current_user()  # 401 before 400
    body = _json_body()
    if ref is None:
        ref = _read_model(token, job_id, read_stamps)
    try:
        parsed = PredictRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidInput(
            'send {"instances": [...]} with at least one instance',
            details={"field": "instances"},
        ) from exc
    served = models().get(ref.path, ref.sha256)
    inputs = serving.rows_to_inputs(served.signature, parsed.instances)
    heads = predict_with(ref, served, inputs, "instances")
    return responses.body(responses.predictions(ref.job_id, heads))


def served_model(job_id: str) -> tuple[_ModelRef, serving.Served]:
    """The job's model, loaded in this process, if the request's token may call it."""
    token = bearer()
    read_stamps, ref = _kept_model(token, job_id)
    if ref is None:
        ref = _read_model(token, job_id, read_stamps)
    return ref, models().get(ref.path, ref.sha256)


def predict_with(
    ref: _ModelRef, served: serving.Served, inputs: dict[str, Any], field: str = "inputs"
) -> list[serving.Head]:
    """Every output for a batch given per input name, within the server's instance limit: the
    one predict of every protocol."""
    limit = settings().max_predict_instances
    if any(np.ndim(v) > 0 and len(v) > limit for v in inputs.values()):
        raise InvalidInput(f"at most {limit} instances per request", details={"field": field})
    return serving.predict(served, inputs, ref.scale)


@bp.get("/<job_id>/model")
def download(job_id: str) -> ResponseReturnValue:
    """The trained model as a .keras (default) or .h5 file."""
    fmt = request.args.get("format", "keras")
    if fmt not in artifacts.MODEL_FILES:
        raise InvalidInput(
            f"format must be one of {', '.join(artifacts.MODEL_FILES)}; got {fmt!r}",
            details={"field": "format"},
        )
    _, (path, _artifact) = _model_file(job_id, fmt)
    return send_file(
        path,
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=f"trainq-{job_id}.{fmt}",
    )
