"""Sweeps: submit one (checked whole before anything is recorded), follow it, cancel it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, request, url_for
from flask.typing import ResponseReturnValue
from pydantic import ValidationError

from shared.db import describe, unavailable
from shared.errors import InvalidSpec
from shared.jobs import dispatch, quotas
from shared.ml import submit_check
from shared.models import SweepStatus
from shared.spec.job import JobSpec
from shared.sweeps import service
from shared.sweeps.spec import SweepSpec, corners, problems, with_values
from web import bodies, events, responses
from web.auth import current_user
from web.errors import validation_details
from web.extensions import db, queue, settings
from web.schemas import SweepList

log = logging.getLogger(__name__)
bp = Blueprint("sweeps", __name__)

_TAGS = {"space": {"float", "int", "categorical"},
         "pruner": {"none", "median", "successive_halving"}}  # fmt: skip


def _refuse(errors: list[dict[str, str]]) -> InvalidSpec:
    first = errors[0]
    return InvalidSpec(f"{first['field']}: {first['message']}", details={"errors": errors})


def _sweep(body: Any) -> SweepSpec:
    try:
        return SweepSpec.model_validate(body)
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False, include_input=False):
            loc = list(err["loc"])
            at = 2 if loc[:1] == ["space"] else 1
            if loc and loc[0] in _TAGS and len(loc) > at and loc[at] in _TAGS[loc[0]]:
                del loc[at]  # the discriminator's tag: not a field of the request
            field = ".".join(str(p) for p in loc)
            errors.append({"field": field, "message": err["msg"].removeprefix("Value error, ")})
        raise _refuse(errors) from None


def _candidate(sweep: SweepSpec, values: dict[str, Any]) -> JobSpec:
    """The trial spec for these values; 422 naming the searched paths if it is not a spec."""
    try:
        return JobSpec.model_validate(with_values(sweep.spec, values))
    except ValidationError as exc:
        shown = ", ".join(f"{p} = {v!r}" for p, v in values.items())
        first = validation_details(exc)[0]
        message = f"with {shown}: {first['field']}: {first['message']}"
        raise _refuse([{"field": f"space.{path}", "message": message} for path in values]) from None


def check(sweep: SweepSpec, base: JobSpec) -> None:
    """The whole sweep, before anything is recorded: its paths in the base spec, each path's
    extreme values as specs, and its two corners (every path at its low end, every path at its
    high end) built against the dataset; a refusal names the path."""
    found = problems(sweep, sweep.spec)
    if found:
        raise _refuse([{"field": f, "message": m} for f, m in found])
    if sweep.max_trials > settings().max_sweep_trials:
        raise InvalidSpec(
            f"max_trials is {sweep.max_trials}; this server runs at most "
            f"{settings().max_sweep_trials} trials a sweep",
            details={"errors": [{"field": "max_trials", "message": "too many trials"}]},
        )
    ends = corners(sweep.space)
    for path, values in ends.items():
        for value in values:
            submit_check.limits(_candidate(sweep, {path: value}), settings())
    submit_check.limits(base, settings())
    lows = {path: values[0] for path, values in ends.items()}
    highs = {path: values[-1] for path, values in ends.items()}
    for corner in (lows, highs):
        _build(sweep, corner, ends)


def _build(sweep: SweepSpec, corner: dict[str, Any], ends: dict[str, list[Any]]) -> None:
    user = current_user()
    try:
        submit_check.check(db(), user, _candidate(sweep, corner), settings())
        return
    except InvalidSpec as exc:
        failure = exc
    # Which path: the one whose value alone fails to build (the others at the base spec's).
    for path in corner:
        try:
            submit_check.check(db(), user, _candidate(sweep, {path: corner[path]}), settings())
        except InvalidSpec as alone:
            raise _refuse(
                [{"field": f"space.{path}", "message": f"with {path} = {corner[path]!r}: "
                  f"{alone.message}"}]
            ) from None  # fmt: skip
    shown = ", ".join(f"{p} = {v!r}" for p, v in corner.items())
    raise _refuse(
        [{"field": f"space.{path}", "message": f"with {shown} together: {failure.message}"}
         for path in corner]
    ) from None  # fmt: skip


@bp.post("")
def submit() -> ResponseReturnValue:
    """Check a sweep whole and record it with its first trials: 202 with the sweep."""
    user = current_user()
    request.max_content_length = min(settings().max_spec_bytes, settings().max_request_bytes)
    sweep = _sweep(bodies.json_body(InvalidSpec))
    try:
        base = JobSpec.model_validate(sweep.spec)
    except ValidationError as exc:
        raise _refuse(validation_details(exc, "spec.")) from None
    session = db()
    quotas.admit_submission(session, user, settings())  # spends the rate: cheap checks first
    check(sweep, base)
    row = service.create(session, user, sweep, settings())
    session.commit()
    try:
        dispatch.dispatch(queue().db, settings(), queue().publish)
    except Exception as exc:
        if not unavailable(exc):
            raise
        log.warning("sweep_id=%s recorded; dispatch waits: %s", row.id, describe(exc))
    jobs = service.trials(session, row.id)
    location = url_for("sweeps.get", sweep_id=row.id)
    return responses.body(responses.sweep_summary(row, jobs)), 202, {"Location": location}


@bp.get("")
def list_sweeps() -> ResponseReturnValue:
    """The caller's sweeps, newest first."""
    session = db()
    rows = service.list_sweeps(session, current_user())
    trials = service.trials_by_sweep(session, [r.id for r in rows])
    return responses.body(
        SweepList(sweeps=[responses.sweep_summary(r, trials[r.id]) for r in rows])
    )


@bp.get("/<sweep_id>")
def get(sweep_id: str) -> ResponseReturnValue:
    """A sweep: trials by state, the best so far, every trial's values and objective."""
    session = db()
    row = service.get_sweep(session, current_user(), sweep_id)
    return responses.body(responses.sweep_detail(row, service.trials(session, row.id)))


@bp.post("/<sweep_id>/cancel")
def cancel(sweep_id: str) -> ResponseReturnValue:
    """Stop a sweep: no more trials, queued ones cancelled, running ones after their batch."""
    session = db()
    row = service.get_sweep(session, current_user(), sweep_id)
    service.cancel(session, row)
    session.commit()
    session.refresh(row)
    body = responses.body(responses.sweep_detail(row, service.trials(session, row.id)))
    return body, 200 if row.status != SweepStatus.running else 202


@bp.get("/<sweep_id>/events")
def sweep_events(sweep_id: str) -> Response:
    """text/event-stream of every trial's events (ids across the sweep), then the sweep."""
    after = events.last_event_id()
    user = current_user()
    service.get_sweep(db(), user, sweep_id)
    state = current_app.extensions["trainq"]

    def body() -> Iterator[str]:
        return events.sweep_stream(state["sessions"], sweep_id, after)

    return events.open_stream(user.id, body, f"GET /api/v1/sweeps/{sweep_id}")
