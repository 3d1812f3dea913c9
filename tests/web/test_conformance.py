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
from shared.jobs import lifecycle, provenance
from shared.ml import serving
from shared.models import Role
from shared.settings import Settings
from shared.spec.job import JobSpec
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

    signature = serving.Signature(
        (serving.Tensor("x", (3,)),), (serving.Tensor("dense", (2,)),), (False,)
    )

    def get(self, path: Path, sha256: str) -> object:
        return self


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
    ran_on = {"versions": dict.fromkeys(("python", "tensorflow", "keras", "numpy", "trainq"), "1"),
              "threads": {"intra_op": 1, "inter_op": 2}, "host": "h"}  # fmt: skip
    spec = JobSpec.model_validate(quickstart(epochs=2))
    assert provenance.record(db, job["id"], "test-worker", spec, ran_on) == spec.seed
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
    check("POST", f"{one}/rerun", client.post(f"{JOBS}/{job['id']}/rerun", headers=h), 202)
    logs = artifacts.tensorboard_dir(settings.artifacts, job["id"]) / "train"
    logs.mkdir(parents=True)
    (logs / "events.out.tfevents.0").write_bytes(b"")
    tensorboard = client.get(f"{JOBS}/{job['id']}/tensorboard", headers=h)
    check("GET", f"{one}/tensorboard", tensorboard, 200)
    events = client.get(f"{JOBS}/{job['id']}/events", headers=h)  # it has ended: all, then EOF
    check("GET", f"{one}/events", events, 200)

    logits = np.array([[0.5, 1.5]], "float32")
    predicted = [
        serving.Head("dense", logits, logits, np.array([[0.25, 0.75]], "float32"), np.array([1]))
    ]
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

    _walk_registry(check, client, h, job["id"], queued["id"])
    _walk_protocols(check, client, h, settings, alice["id"], job["id"])
    _walk_webhooks(check, client, h, settings)
    _walk_batch_predictions(check, client, h, settings, job["id"])
    both = f"/api/v1/compare?jobs={job['id']},{queued['id']}"
    check("GET", "/api/v1/compare", client.get(both, headers=h), 404)  # the second is bob's
    check("GET", "/api/v1/compare", client.get(both.split(",")[0], headers=h), 200)
    check("GET", "/api/v1/compare", client.get("/api/v1/compare", headers=h), 422)
    checked = "/api/v1/jobs/check"
    check("POST", checked, client.post(checked, json=quickstart(), headers=h), 204)
    check("POST", checked, client.post(checked, json={"name": 1}, headers=h), 422)

    # The one error shape, at each status the document gives.
    check("GET", JOBS, client.get(JOBS), 401)
    check("GET", one, client.get(f"{JOBS}/nope", headers=h), 404)
    check("POST", f"{one}/cancel", client.post(f"{JOBS}/{job['id']}/cancel", headers=h), 409)
    never = client.post(f"{JOBS}/{queued['id']}/rerun", headers=bob["headers"])  # not trained
    check("POST", f"{one}/rerun", never, 409)
    check("GET", JOBS, client.get(f"{JOBS}?page=0", headers=h), 422)
    check("GET", JOBS, client.get(f"{JOBS}?page=1&page=2", headers=h), 422)
    check("GET", JOBS, client.get(f"{JOBS}?all=1", headers=admin["headers"]), 422)
    check("POST", JOBS, client.post(JOBS, data="{", headers=h), 400)
    check("POST", JOBS, client.post(JOBS, json={"name": 1}, headers=h), 422)
    empty = client.post(f"{JOBS}/{job['id']}/predict", json={"instances": []}, headers=h)
    check("POST", f"{one}/predict", empty, 422)
    documented = {(m.upper(), p) for p, item in schema.raw_schema["paths"].items() for m in item}
    assert seen == documented  # every operation answered at least once


def _walk_registry(
    check: Callable[[str, str, TestResponse, int], TestResponse], client: FlaskClient,
    h: dict[str, str], job_id: str, not_mine: str,
) -> None:  # fmt: skip
    """The registry's operations on model "reg", version 1 of the job (serving.predict
    replaced), alias "champion" at it; each refusal the document gives."""
    base, model = "/api/v1/models", "/api/v1/models/{name}"
    version, alias = f"{model}/versions/{{version}}", f"{model}/aliases/{{alias}}"
    made = client.post(f"{base}/reg/versions", json={"job_id": job_id}, headers=h)
    check("POST", f"{model}/versions", made, 201)
    check("PUT", alias, client.put(f"{base}/reg/aliases/champion", json={"version": 1},
                                   headers=h), 200)  # fmt: skip
    check("GET", base, client.get(base, headers=h), 200)
    check("GET", model, client.get(f"{base}/reg", headers=h), 200)
    check("GET", version, client.get(f"{base}/reg/versions/1", headers=h), 200)
    rows = {"instances": [[1, 2, 3]]}
    for path, url in [(f"{model}/predict", "reg/predict"),
                      (f"{version}/predict", "reg/versions/1/predict"),
                      (f"{alias}/predict", "reg/aliases/champion/predict")]:  # fmt: skip
        check("POST", path, client.post(f"{base}/{url}", json=rows, headers=h), 200)
    check("DELETE", version, client.delete(f"{base}/reg/versions/1", headers=h), 409)
    check("POST", f"{model}/versions", client.post(f"{base}/reg/versions",
          json={"job_id": not_mine}, headers=h), 404)  # fmt: skip
    check("PUT", alias, client.put(f"{base}/reg/aliases/7", json={"version": 1}, headers=h), 422)
    check("DELETE", alias, client.delete(f"{base}/reg/aliases/champion", headers=h), 204)
    check("DELETE", version, client.delete(f"{base}/reg/versions/1", headers=h), 204)
    check("DELETE", model, client.delete(f"{base}/reg", headers=h), 204)
    check("GET", model, client.get(f"{base}/reg", headers=h), 404)


def _walk_protocols(
    check: Callable[[str, str, TestResponse, int], TestResponse], client: FlaskClient,
    h: dict[str, str], settings: Settings, user_id: int, job_id: str,
) -> None:  # fmt: skip
    """TF Serving's and the Open Inference Protocol's operations, on the job registered as
    model "walk" (serving.predict replaced, as for the job predict)."""
    from shared.models import User
    from shared.registry import service

    with session_scope(settings.database_url) as s:
        service.register(s, s.get(User, user_id), "walk", job_id)
        service.set_alias(s, s.get(User, user_id), "walk", "champion", 1)
    rows = {"instances": [[1, 2, 3]]}
    tf = "/v1/models/{name}"
    for suffix, path in [("", tf), ("/versions/1", f"{tf}/versions/{{version}}"),
                         ("/labels/champion", f"{tf}/labels/{{alias}}")]:  # fmt: skip
        url = f"/v1/models/walk{suffix}"
        check("POST", f"{path}:predict", client.post(f"{url}:predict", json=rows, headers=h), 200)
        check("GET", path, client.get(url, headers=h), 200)
        check("GET", f"{path}/metadata", client.get(f"{url}/metadata", headers=h), 200)
    check("POST", "/v1/models/{name}:predict", client.post("/v1/models/walk:predict", json={},
                                                           headers=h), 400)  # fmt: skip
    check("GET", "/v1/models/{name}", client.get("/v1/models/nope", headers=h), 404)
    check("GET", "/v1/models/{name}", client.get("/v1/models/walk"), 401)
    tensor = {"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}
    for suffix, path in [
        ("", "/v2/models/{name}"),
        ("/versions/1", "/v2/models/{name}/versions/{version}"),
    ]:
        url = f"/v2/models/walk{suffix}"
        infer = client.post(f"{url}/infer", json={"inputs": [tensor]}, headers=h)
        assert infer.json["outputs"][2] == {"name": "classes", "datatype": "INT64", "shape": [1],
                                            "data": [1]}  # fmt: skip
        check("POST", f"{path}/infer", infer, 200)
        check("GET", path, client.get(url, headers=h), 200)
        check("GET", f"{path}/ready", client.get(f"{url}/ready", headers=h), 200)
    empty = client.post("/v2/models/walk/infer", json={"inputs": []}, headers=h)
    check("POST", "/v2/models/{name}/infer", empty, 400)
    for path in ["/v2", "/v2/health/live", "/v2/health/ready"]:
        check("GET", path, client.get(path), 200)


def _walk_webhooks(
    check: Callable[[str, str, TestResponse, int], TestResponse], client: FlaskClient,
    h: dict[str, str], settings: Settings,
) -> None:  # fmt: skip
    """A webhook registered (to loopback: allowed here), pinged, its delivery redelivered and
    listed, then deleted; a URL that is not http(s) refused. Nothing is sent: no worker runs."""
    settings.webhooks_allow_private = True  # the app's settings object
    base, one = "/api/v1/webhooks", "/api/v1/webhooks/{webhook_id}"
    hook = check("POST", base, client.post(base, json={"url": "http://127.0.0.1:9/hook"},
                                           headers=h), 201).json  # fmt: skip
    url = f"{base}/{hook['id']}"
    check("GET", base, client.get(base, headers=h), 200)
    check("GET", one, client.get(url, headers=h), 200)
    ping = check("POST", f"{one}/ping", client.post(f"{url}/ping", headers=h), 202).json
    again = client.post(f"{url}/deliveries/{ping['id']}/redeliver", headers=h)
    check("POST", f"{one}/deliveries/{{delivery_id}}/redeliver", again, 202)
    check("GET", f"{one}/deliveries", client.get(f"{url}/deliveries", headers=h), 200)
    check("DELETE", one, client.delete(url, headers=h), 204)
    check("GET", one, client.get(url, headers=h), 404)
    check("POST", base, client.post(base, json={"url": "ftp://example.com/x"}, headers=h), 422)


def _walk_batch_predictions(
    check: Callable[[str, str, TestResponse, int], TestResponse], client: FlaskClient,
    h: dict[str, str], settings: Settings, job_id: str,
) -> None:  # fmt: skip
    """A batch prediction with the job's model cancelled while queued; another one made to
    succeed by hand (no worker runs), its result downloaded; each refusal the document gives."""
    base, one = "/api/v1/batch-predictions", "/api/v1/batch-predictions/{batch_id}"
    body = {"job_id": job_id, "dataset": {"name": "mnist-sample"}, "split": "test"}
    first = check("POST", base, client.post(base, json=body, headers=h), 202).json
    url = f"{base}/{first['id']}"
    check("GET", base, client.get(base, headers=h), 200)
    check("GET", one, client.get(url, headers=h), 200)
    check("GET", f"{one}/result", client.get(f"{url}/result", headers=h), 409)
    check("POST", f"{one}/cancel", client.post(f"{url}/cancel", headers=h), 200)
    again = check("POST", f"{one}/cancel", client.post(f"{url}/cancel", headers=h), 409).json
    said = f"batch prediction {first['id']} is cancelled: only a queued or running batch prediction"
    assert again["error"]["message"].startswith(said), again
    second = client.post(base, json=body, headers=h).json["id"]
    db = sessions(settings.database_url)
    assert lifecycle.start(db, second, "test-worker")
    check("POST", f"{one}/cancel", client.post(f"{base}/{second}/cancel", headers=h), 202)
    result = settings.artifacts / second / "predictions.npz"
    result.parent.mkdir(parents=True)
    result.write_bytes(npz())
    files = {"npz": (f"{second}/predictions.npz", len(npz()), "0" * 64)}
    assert lifecycle.succeed(db, second, None, files)
    check("GET", f"{one}/result", client.get(f"{base}/{second}/result", headers=h), 200)
    events = check("GET", f"{one}/events", client.get(f"{base}/{second}/events", headers=h), 200)
    assert '"status": "succeeded"' in events.get_data(as_text=True)
    third = client.post(base, json=body, headers=h).json["id"]
    check("DELETE", one, client.delete(f"{base}/{third}", headers=h), 409)  # queued
    check("DELETE", one, client.delete(f"{base}/{second}", headers=h), 204)
    check("GET", one, client.get(f"{base}/nope", headers=h), 404)
    check("POST", base, client.post(base, json={**body, "split": "all"}, headers=h), 422)


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
