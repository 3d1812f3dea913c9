"""Responses as the OpenAPI document says, checked in-process with schemathesis's own checks:
every answer of a walk through the API conforms, and a response that leaves the document fails
the very checks that the live run (tests/web/test_openapi_live.py) relies on."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import schemathesis
from flask import Flask, Response
from flask.testing import FlaskClient
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.test import TestResponse

from shared import artifacts
from shared.auth import create_user, issue_token
from shared.db import session_scope, sessions
from shared.jobs import lifecycle
from shared.ml import serving
from shared.models import Role
from shared.settings import Settings
from shared.sweeps import service as sweep_service
from tests.specs import quickstart
from web import responses

CHECKS = [status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]  # fmt: skip
JOBS = "/api/v1/jobs"
User = dict[str, Any]


@pytest.fixture
def schema(app: Flask) -> BaseSchema:
    """The document as the app serves it, its operations called through the app (WSGI)."""
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


def failures(schema: BaseSchema, method: str, path: str, response: TestResponse) -> list[str]:
    """What the checks find wrong with a response of the documented operation."""
    names = re.findall(r"{(\w+)}", path)  # for the report of a failure only
    case = schema[path][method].Case(path_parameters=dict.fromkeys(names, "x"))
    try:
        case.validate_response(response, checks=CHECKS)
    except FailureGroup as group:
        return [f"{f.code} {f.title}" for f in group.exceptions if isinstance(f, Failure)]
    except Failure as failure:
        return [f"{failure.code} {failure.title}"]
    return []


def npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x_train=np.zeros((4, 3), "float32"), y_train=np.arange(4))
    return buffer.getvalue()


@pytest.fixture
def admin(sqlite_url: str) -> User:
    with session_scope(sqlite_url) as s:
        token = issue_token(s, create_user(s, "root", Role.admin))
    return {"headers": {"Authorization": f"Bearer {token}"}}


class _Model:
    """What predict loads, for a model file that is no model (serving.predict is replaced)."""

    def get(self, path: Path, sha256: str) -> object:
        return object()


def test_every_answer_of_a_walk_through_the_api_is_as_documented(
    app: Flask, client: FlaskClient, schema: BaseSchema, settings: Settings, alice: User,
    bob: User, admin: User, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    seen: set[tuple[str, str]] = set()
    app.extensions["trainq"]["status"].reuse_seconds = 0.0

    def check(method: str, path: str, response: TestResponse, status: int) -> TestResponse:
        assert response.status_code == status, response.get_data(as_text=True)
        assert failures(schema, method, path, response) == [], (method, path, status)
        seen.add((method, path))
        return response

    h, db = alice["headers"], sessions(settings.database_url)
    job = check("POST", JOBS, client.post(JOBS, json=quickstart(epochs=2), headers=h), 202).json
    one = f"{JOBS}/{{job_id}}"
    check("GET", one, client.get(f"{JOBS}/{job['id']}", headers=h), 200)  # queued: its place
    check("GET", JOBS, client.get(JOBS, headers=h), 200)
    check("GET", JOBS, client.get(f"{JOBS}?all=true", headers=admin["headers"]), 200)  # owners
    queued = client.post(JOBS, json=quickstart(), headers=bob["headers"]).json
    check("POST", f"{one}/cancel", client.post(f"{JOBS}/{queued['id']}/cancel",
                                                headers=bob["headers"]), 200)  # fmt: skip

    assert lifecycle.start(db, job["id"], "test-worker")
    lifecycle.record_epoch(db, job["id"], 1, {"loss": 0.5, "accuracy": float("nan")}, 0.25)
    for _ in range(2):  # from the database, then from the status cache (FastPath)
        check("GET", one, client.get(f"{JOBS}/{job['id']}", headers=h), 200)
    model = settings.artifacts / job["id"] / "model.keras"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"not a model")
    files = {"keras": (f"{job['id']}/model.keras", 11, "0" * 64)}
    assert lifecycle.succeed(db, job["id"], {"accuracy": 0.5}, files)
    done = check("GET", one, client.get(f"{JOBS}/{job['id']}", headers=h), 200).json
    assert done["model"]["download"] == f"{JOBS}/{job['id']}/model?format=keras"
    check("GET", f"{one}/model", client.get(f"{JOBS}/{job['id']}/model", headers=h), 200)
    logs = artifacts.tensorboard_dir(settings.artifacts, job["id"]) / "train"
    logs.mkdir(parents=True)
    (logs / "events.out.tfevents.0").write_bytes(b"")
    tensorboard = client.get(f"{JOBS}/{job['id']}/tensorboard", headers=h)
    check("GET", f"{one}/tensorboard", tensorboard, 200)
    events = client.get(f"{JOBS}/{job['id']}/events", headers=h)  # it has ended: all, then EOF
    check("GET", f"{one}/events", events, 200)

    predicted = serving.Predictions(
        np.array([[0.5, 1.5]], "float32"), np.array([[0.25, 0.75]], "float32"), np.array([1])
    )
    monkeypatch.setattr(serving, "predict", lambda *_: predicted)
    monkeypatch.setattr("web.jobs.models", _Model)
    body = {"instances": [[1, 2, 3]]}
    r = check("POST", f"{one}/predict", client.post(f"{JOBS}/{job['id']}/predict", json=body,
                                                    headers=h), 200)  # fmt: skip
    assert r.json["predictions"] == [{"logits": [0.5, 1.5], "probabilities": [0.25, 0.75],
                                      "class": 1}]  # fmt: skip

    running = client.post(JOBS, json=quickstart(), headers=h).json
    assert lifecycle.start(db, running["id"], "test-worker")
    check("POST", f"{one}/cancel", client.post(f"{JOBS}/{running['id']}/cancel", headers=h), 202)

    check("GET", "/api/v1/me", client.get("/api/v1/me", headers=h), 200)
    datasets = "/api/v1/datasets"
    upload = client.post(datasets, data={"file": (io.BytesIO(npz()), "d.npz")}, headers=h,
                         content_type="multipart/form-data")  # fmt: skip
    dataset = check("POST", datasets, upload, 201).json
    check("GET", datasets, client.get(datasets, headers=h), 200)
    ds = f"{datasets}/{{dataset_id}}"
    check("GET", ds, client.get(f"{datasets}/{dataset['id']}", headers=h), 200)
    check("DELETE", ds, client.delete(f"{datasets}/{dataset['id']}", headers=h), 204)
    check("GET", "/healthz", client.get("/healthz"), 200)

    # An upload in parts: started, a part sent, its state read, completed; another given up.
    uploads, an_upload = "/api/v1/uploads", "/api/v1/uploads/{upload_id}"
    content = npz()
    started = client.post(uploads, json={"size": len(content), "name": "parts"}, headers=h)
    upload = check("POST", uploads, started, 201).json
    part = client.put(f"{uploads}/{upload['id']}/parts/1", data=content, headers=h,
                      content_type="application/octet-stream")  # fmt: skip
    check("PUT", f"{an_upload}/parts/{{n}}", part, 200)
    check("GET", an_upload, client.get(f"{uploads}/{upload['id']}", headers=h), 200)
    done = client.post(f"{uploads}/{upload['id']}/complete", headers=h)
    check("POST", f"{an_upload}/complete", done, 201)
    abandoned = client.post(uploads, json={"size": 10}, headers=h).json
    check("DELETE", an_upload, client.delete(f"{uploads}/{abandoned['id']}", headers=h), 204)
    check("GET", an_upload, client.get(f"{uploads}/nope", headers=h), 404)

    # A sweep: submitted, listed, read with a trial that ran and one the pruner stopped,
    # cancelled while one runs (202) and when over (200), its stream once it has ended.
    sweeps, a_sweep = "/api/v1/sweeps", "/api/v1/sweeps/{sweep_id}"
    body = {
        "spec": quickstart(epochs=2), "max_trials": 3, "max_concurrent": 2,
        "space": {"fit.batch_size": {"type": "categorical", "choices": [16, 32, 64]}},
        "objective": {"metric": "loss", "direction": "minimize"}, "sampler": "grid",
        "pruner": {"type": "median", "n_startup_trials": 1},
    }  # fmt: skip
    sweep = check("POST", sweeps, client.post(sweeps, json=body, headers=h), 202).json
    tried = client.get(f"{sweeps}/{sweep['id']}", headers=h).json["tried"]
    for trial, pruned in zip([t["job_id"] for t in tried], (False, True), strict=True):
        assert lifecycle.start(db, trial, "test-worker")
        lifecycle.record_epoch(db, trial, 1, {"loss": 0.5}, 0.25)
        assert lifecycle.succeed(db, trial, None, {}, pruned=pruned)
    sweep_service.advance(db, settings, sweep["id"])  # as the worker does once a trial ends
    last = client.get(f"{sweeps}/{sweep['id']}", headers=h).json["tried"][-1]["job_id"]
    assert lifecycle.start(db, last, "test-worker")
    check("GET", sweeps, client.get(sweeps, headers=h), 200)
    check("GET", a_sweep, client.get(f"{sweeps}/{sweep['id']}", headers=h), 200)
    cancel = f"{sweeps}/{sweep['id']}/cancel"
    check("POST", f"{a_sweep}/cancel", client.post(cancel, headers=h), 202)
    lifecycle.cancelled(db, last, {})
    sweep_service.advance(db, settings, sweep["id"])
    check("POST", f"{a_sweep}/cancel", client.post(cancel, headers=h), 200)
    stream = client.get(f"{sweeps}/{sweep['id']}/events", headers=h)
    check("GET", f"{a_sweep}/events", stream, 200)
    assert "event: sweep" in stream.get_data(as_text=True)
    check("GET", a_sweep, client.get(f"{sweeps}/nope", headers=h), 404)
    check("POST", sweeps, client.post(sweeps, json={**body, "max_trials": 0}, headers=h), 422)

    # The one error shape, at each status the document gives.
    check("GET", JOBS, client.get(JOBS), 401)
    check("GET", one, client.get(f"{JOBS}/nope", headers=h), 404)
    check("POST", f"{one}/cancel", client.post(f"{JOBS}/{job['id']}/cancel", headers=h), 409)
    check("GET", JOBS, client.get(f"{JOBS}?page=0", headers=h), 422)
    check("GET", JOBS, client.get(f"{JOBS}?page=1&page=2", headers=h), 422)
    check("GET", JOBS, client.get(f"{JOBS}?all=1", headers=admin["headers"]), 422)
    check("POST", JOBS, client.post(JOBS, data="{", headers=h), 400)
    check("POST", JOBS, client.post(JOBS, json={"name": 1}, headers=h), 422)
    empty = client.post(f"{JOBS}/{job['id']}/predict", json={"instances": []}, headers=h)
    check("POST", f"{one}/predict", empty, 422)
    documented = {(m.upper(), p) for p, item in schema.raw_schema["paths"].items() for m in item}
    assert seen == documented  # every operation answered at least once


def _drop(field: str) -> Callable[[dict[str, Any]], Any]:
    return lambda body: {k: v for k, v in body.items() if k != field}


BREAKS: dict[str, tuple[str, str, Callable[[dict[str, Any]], Any], str]] = {
    # name: (endpoint, documented path, what becomes of the body, what the checks report)
    "a required field missing": (
        "jobs.get",
        f"{JOBS}/{{job_id}}",
        _drop("progress"),
        "ST108 Response violates schema",
    ),
    "a field of the wrong type": (
        "jobs.get",
        f"{JOBS}/{{job_id}}",
        lambda body: body | {"attempt": "0"},
        "ST108 Response violates schema",
    ),
    "a nested field of the wrong type": (
        "jobs.list_jobs",
        JOBS,
        lambda body: body | {"jobs": [j | {"progress": {"percent": "0"}} for j in body["jobs"]]},
        "ST108 Response violates schema",
    ),
    "an undocumented status": (
        "jobs.get",
        f"{JOBS}/{{job_id}}",
        lambda body: Response(status=418),
        "ST103 Undocumented status code",
    ),
    "an undocumented content type": (
        "jobs.get",
        f"{JOBS}/{{job_id}}",
        lambda body: Response(str(body), mimetype="text/plain"),
        "ST105 Undocumented Content-Type",
    ),
}


@pytest.mark.parametrize("name", list(BREAKS))
def test_a_response_that_leaves_the_document_fails_the_checks(
    app: Flask, client: FlaskClient, schema: BaseSchema, alice: User, name: str
) -> None:
    endpoint, path, change, reported = BREAKS[name]
    job = client.post(JOBS, json=quickstart(), headers=alice["headers"]).json  # queued: no cache
    url = f"{JOBS}/{job['id']}" if "{job_id}" in path else JOBS

    def answer() -> TestResponse:
        return client.get(url, headers=alice["headers"])

    assert failures(schema, "GET", path, answer()) == []  # as the route answers: conforms
    route = app.view_functions[endpoint]
    app.view_functions[endpoint] = lambda **kwargs: change(route(**kwargs))
    assert reported in failures(schema, "GET", path, answer())


def test_an_event_that_leaves_the_document_fails_the_checks(
    client: FlaskClient, schema: BaseSchema, settings: Settings, alice: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    job = client.post(JOBS, json=quickstart(), headers=alice["headers"]).json
    db = sessions(settings.database_url)
    assert lifecycle.start(db, job["id"], "test-worker")
    lifecycle.fail(db, job["id"], "RuntimeError: stopped by the test")  # the stream ends
    url, path = f"{JOBS}/{job['id']}/events", f"{JOBS}/{{job_id}}/events"
    assert failures(schema, "GET", path, client.get(url, headers=alice["headers"])) == []
    built = responses.body
    monkeypatch.setattr(responses, "body", lambda model: built(model) | {"created_at": 0})
    found = failures(schema, "GET", path, client.get(url, headers=alice["headers"]))
    assert "ST108 SSE event payload violates content schema" in found  # data: an Event
