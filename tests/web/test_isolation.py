"""Every endpoint, as every kind of caller: the owner, another user, and five kinds of bad token.

The table ENDPOINTS lists each route of the API; a route that is not in it fails
test_every_route_is_in_the_table, so a new endpoint is one more line here.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from shared.auth import create_user, issue_token, revoke_token, set_disabled
from shared.commands.database import migrate
from shared.db import session_scope
from shared.errors import NotFound
from shared.jobs.queries import get_job_for
from shared.models import Job, JobKind, Role, User, utcnow
from shared.settings import Settings
from tests.specs import quickstart
from tests.support import ROOT
from web import create_app

THREE_DIGITS = json.loads((ROOT / "examples" / "three_digits.json").read_text())
SECRET = {"alice": "alice-private-experiment", "bob": "bob-private-experiment"}
SWEEP = {
    "name": "a sweep", "spec": quickstart(epochs=1), "max_trials": 2, "max_concurrent": 1,
    "space": {"fit.batch_size": {"type": "categorical", "choices": [16, 32]}},
    "objective": {"metric": "val_loss", "direction": "minimize"},
}  # fmt: skip


BATCH = {"job_id": "<job_id>", "dataset": {"name": "mnist-sample"}, "split": "test"}
TF_TARGETS = ("", "/versions/<int:version>", "/labels/<model:alias>")
V2_DIGITS = {"inputs": [{"name": "x", "shape": [3, 28, 28], "datatype": "UINT8",
                         "data": np.ravel(THREE_DIGITS["instances"]).tolist()}]}  # fmt: skip


@dataclass(frozen=True)
class Endpoint:
    """One route and a request that its owner may make of it."""

    method: str
    rule: str  # as Flask names it
    query: str = ""
    body: Any = None
    owner_status: int = 200
    upload: bool = False  # send a small .npz as a multipart upload
    raw: bytes | None = None  # send these bytes as the body

    @property
    def per_job(self) -> bool:
        """A route of one resource: another user must get 404, as for one that does not exist."""
        kinds = ("job_id", "dataset_id", "sweep_id", "upload_id", "name", "webhook_id", "batch_id")
        at = self.rule + self.query
        in_body = isinstance(self.body, dict) and self.body.get("job_id") == "<job_id>"
        return in_body or any(f"<{kind}>" in at or f":{kind}>" in at for kind in kinds)


ENDPOINTS = [
    Endpoint("GET", "/api/v1/me"),
    Endpoint("GET", "/api/v1/jobs"),
    Endpoint("POST", "/api/v1/jobs", body=quickstart(epochs=1), owner_status=202),
    Endpoint("POST", "/api/v1/jobs/check", body=quickstart(epochs=1), owner_status=204),
    Endpoint("GET", "/api/v1/jobs/<job_id>"),
    Endpoint("GET", "/api/v1/compare", query="?jobs=<job_id>"),
    Endpoint("POST", "/api/v1/jobs/<job_id>/predict", body=THREE_DIGITS),
    Endpoint("GET", "/api/v1/jobs/<job_id>/model", query="?format=keras"),
    Endpoint("GET", "/api/v1/jobs/<job_id>/model", query="?format=h5"),
    # The owner's job has finished: cancelling it is a conflict (cancel's 200/202 are in
    # tests/web/test_cancel.py); what matters here is that nobody else learns it exists.
    Endpoint("POST", "/api/v1/jobs/<job_id>/cancel", owner_status=409),
    # Alice's job trained: running it again queues a new job of hers.
    Endpoint("POST", "/api/v1/jobs/<job_id>/rerun", owner_status=202),
    Endpoint("GET", "/api/v1/jobs/<job_id>/events"),  # the job has ended: the stream closes
    Endpoint("GET", "/api/v1/jobs/<job_id>/tensorboard"),
    Endpoint("POST", "/api/v1/datasets", upload=True, owner_status=201),
    Endpoint("GET", "/api/v1/datasets"),
    Endpoint("GET", "/api/v1/datasets", query="?sha256=" + "0" * 64),
    Endpoint("GET", "/api/v1/datasets/<dataset_id>"),
    # A queued job of the owner's reads the dataset, so its owner may not delete it yet.
    Endpoint("DELETE", "/api/v1/datasets/<dataset_id>", owner_status=409),
    # An upload in parts: alice's has none of its bytes yet, so completing it is a conflict;
    # each DELETE gives up an upload of alice's made for that call (World.upload_id).
    Endpoint("POST", "/api/v1/uploads", body={"size": 10, "name": "u"}, owner_status=201),
    Endpoint("GET", "/api/v1/uploads/<upload_id>"),
    Endpoint("PUT", "/api/v1/uploads/<upload_id>/parts/<int:n>", raw=b"0123"),
    Endpoint("POST", "/api/v1/uploads/<upload_id>/complete", owner_status=409),
    Endpoint("DELETE", "/api/v1/uploads/<upload_id>", owner_status=204),
    Endpoint("GET", "/api/v1/sweeps"),
    Endpoint("POST", "/api/v1/sweeps", body=SWEEP, owner_status=202),
    Endpoint("GET", "/api/v1/sweeps/<sweep_id>"),
    # The owner's sweep was cancelled: cancelling it again answers it as it ended.
    Endpoint("POST", "/api/v1/sweeps/<sweep_id>/cancel"),
    Endpoint("GET", "/api/v1/sweeps/<sweep_id>/events"),  # it has ended: the stream closes
    # Webhooks: alice's has a ping delivery (World.webhooks); each DELETE deletes one made for it.
    Endpoint("POST", "/api/v1/webhooks", body={"url": "https://93.184.215.14/"}, owner_status=201),
    Endpoint("GET", "/api/v1/webhooks"),
    Endpoint("GET", "/api/v1/webhooks/<webhook_id>"),
    Endpoint("DELETE", "/api/v1/webhooks/<webhook_id>", owner_status=204),
    Endpoint("GET", "/api/v1/webhooks/<webhook_id>/deliveries"),
    Endpoint("POST", "/api/v1/webhooks/<webhook_id>/ping", owner_status=202),
    Endpoint(
        "POST", "/api/v1/webhooks/<webhook_id>/deliveries/<delivery_id>/redeliver", owner_status=202
    ),
    # Batch predictions: alice's has predicted her dataset (World.batch_ids), so cancelling it
    # is a conflict; a new one with another user's job is as if it did not exist.
    Endpoint("POST", "/api/v1/batch-predictions", body=BATCH, owner_status=202),
    Endpoint("GET", "/api/v1/batch-predictions"),
    Endpoint("GET", "/api/v1/batch-predictions/<batch_id>"),
    # Each DELETE is of a new queued one of alice's (World.batch_id): not before a cancel.
    Endpoint("DELETE", "/api/v1/batch-predictions/<batch_id>", owner_status=409),
    Endpoint("GET", "/api/v1/batch-predictions/<batch_id>/events"),  # it has ended
    Endpoint("GET", "/api/v1/batch-predictions/<batch_id>/result"),
    Endpoint("POST", "/api/v1/batch-predictions/<batch_id>/cancel", owner_status=409),
    # The registry: alice's model "digits" (MODEL) has version 1 of her job, alias "champion"
    # at it; bob has a model of another name. Each DELETE removes a model or an alias made
    # for that call (World.prepare); version 1 is held by its alias.
    Endpoint("GET", "/api/v1/models"),
    Endpoint("GET", "/api/v1/models/<name>"),
    Endpoint(
        "POST", "/api/v1/models/<name>/versions", body={"job_id": "<job_id>"}, owner_status=201
    ),
    Endpoint("GET", "/api/v1/models/<name>/versions/<int:version>"),
    Endpoint("DELETE", "/api/v1/models/<name>/versions/<int:version>", owner_status=409),
    Endpoint("PUT", "/api/v1/models/<name>/aliases/<alias>", body={"version": 1}),
    Endpoint("DELETE", "/api/v1/models/<name>/aliases/<alias>", owner_status=204),
    Endpoint("DELETE", "/api/v1/models/<name>", owner_status=204),
    Endpoint("POST", "/api/v1/models/<name>/predict", body=THREE_DIGITS),
    Endpoint("POST", "/api/v1/models/<name>/versions/<int:version>/predict", body=THREE_DIGITS),
    Endpoint("POST", "/api/v1/models/<name>/aliases/<alias>/predict", body=THREE_DIGITS),
    # TF Serving's REST API and the Open Inference Protocol: errors in their shape {"error": "..."}
    *(
        Endpoint("POST", f"/v1/models/<model:name>{at}:predict", body=THREE_DIGITS)
        for at in TF_TARGETS
    ),
    *(
        Endpoint("GET", f"/v1/models/<model:name>{at}{what}")
        for at in TF_TARGETS
        for what in ("", "/metadata")
    ),
    *(
        Endpoint(method, f"/v2/models/<model:name>{at}{what}", body=body)
        for at in ("", "/versions/<int:version>")
        for method, what, body in (
            ("GET", "", None),
            ("GET", "/ready", None),
            ("POST", "/infer", V2_DIGITS),
        )
    ),
]
MODEL = {"alice": "digits", "bob": "bob-private-model"}
WEBHOOK_URL = "https://93.184.215.14/hook"  # a public address: no name to resolve
# Public: no user's data (the dashboard's pages are shells that call the API with a token).
NOT_WALKED = {
    "/healthz", "/static/<path:filename>", "/openapi.json", "/docs", "/docs/start.js",
    "/docs/static/<path:filename>", "/metrics",
    "/", "/jobs/<job_id>", "/sweeps", "/sweeps/<sweep_id>", "/models", "/compare", "/submit",
    "/v2", "/v2/health/live", "/v2/health/ready",  # the Open Inference Protocol's server health
}  # fmt: skip

# Who calls, and what each must get from a per-job route (others get the same but 2xx for the
# other user on routes of their own account).
CALLERS = {
    "owner": None,
    "other-user": 404,
    "no-token": 401,
    "malformed-token": 401,
    "unknown-token": 401,
    "expired-token": 401,
    "revoked-token": 401,
    "disabled-user": 401,
}


@dataclass
class World:
    """Two users with a trained job each, and headers for every kind of caller."""

    app: Flask
    settings: Settings
    headers: dict[str, dict[str, str]]
    job_ids: dict[str, str]
    dataset_ids: dict[str, str]
    sweep_ids: dict[str, str]
    upload_ids: dict[str, str]
    webhooks: dict[str, str] = field(default_factory=dict)  # by user; "delivery": alice's
    batch_ids: dict[str, str] = field(default_factory=dict)

    def prepare(self, endpoint: Endpoint) -> tuple[str, str]:
        """The model and alias names to call with; a DELETE gets its own, made for it."""
        if endpoint.method != "DELETE" or endpoint.rule.endswith("/versions/<int:version>"):
            return MODEL["alice"], "champion"
        client, owner = self.app.test_client(), self.headers["owner"]
        if endpoint.rule.endswith("<alias>"):
            r = client.put(f"/api/v1/models/{MODEL['alice']}/aliases/spare", json={"version": 1},
                           headers=owner)  # fmt: skip
            assert r.status_code == 200, r.get_data(as_text=True)
            return MODEL["alice"], "spare"
        r = client.post("/api/v1/models/spare/versions", json={"job_id": self.job_ids["alice"]},
                        headers=owner)  # fmt: skip
        assert r.status_code == 201, r.get_data(as_text=True)
        return "spare", "champion"

    def upload_id(self, endpoint: Endpoint) -> str:
        """Alice's upload in parts; for a DELETE, a new one of hers, for this call."""
        if endpoint.method != "DELETE" or "<upload_id>" not in endpoint.rule:
            return self.upload_ids["alice"]
        r = self.app.test_client().post("/api/v1/uploads", json={"size": 10},
                                        headers=self.headers["owner"])  # fmt: skip
        assert r.status_code == 201, r.get_data(as_text=True)
        return str(r.get_json()["id"])

    def batch_id(self, endpoint: Endpoint) -> str:
        """Alice's finished batch prediction; for a DELETE, a new queued one of hers."""
        if endpoint.method != "DELETE" or "<batch_id>" not in endpoint.rule:
            return self.batch_ids["alice"]
        body = {"job_id": self.job_ids["alice"], "dataset": {"id": self.dataset_ids["alice"]}}
        r = self.app.test_client().post("/api/v1/batch-predictions", json=body,
                                        headers=self.headers["owner"])  # fmt: skip
        assert r.status_code == 202, r.get_data(as_text=True)
        return str(r.get_json()["id"])

    def webhook(self, endpoint: Endpoint) -> tuple[str, str]:
        """Alice's webhook and its delivery; for a DELETE, a new webhook of hers, for this call."""
        if endpoint.method != "DELETE" or "<webhook_id>" not in endpoint.rule:
            return self.webhooks["alice"], self.webhooks["delivery"]
        r = self.app.test_client().post("/api/v1/webhooks", json={"url": WEBHOOK_URL},
                                        headers=self.headers["owner"])  # fmt: skip
        assert r.status_code == 201, r.get_data(as_text=True)
        return str(r.get_json()["id"]), self.webhooks["delivery"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[World]:
    from worker.training import run_job  # trains for real, in this process

    tmp = tmp_path_factory.mktemp("isolation")
    url = f"sqlite:///{tmp / 'trainq.db'}"
    migrate(url)
    settings = Settings(
        var_dir=tmp,
        database_url=url,
        redis_url=redis_url,
        artifacts=tmp / "artifacts",
        upload_rate=1000,  # every DELETE of an upload in parts gives up one made for it
    )
    tokens: dict[str, str] = {}
    with session_scope(url) as s:
        alice, bob = create_user(s, "alice"), create_user(s, "bob")
        tokens["owner"] = issue_token(s, alice)
        tokens["other-user"] = issue_token(s, bob)
        tokens["expired-token"] = issue_token(s, alice, expires_at=utcnow() - timedelta(seconds=1))
        tokens["revoked-token"] = issue_token(s, alice)
        revoke_token(s, tokens["revoked-token"])
        tokens["disabled-user"] = issue_token(s, create_user(s, "carol"))
        set_disabled(s, "carol")
    headers = {name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()}
    headers["no-token"] = {}
    headers["malformed-token"] = {"Authorization": "Basic YWxpY2U6c2VjcmV0"}
    headers["unknown-token"] = {"Authorization": "Bearer tq_" + "x" * 43}

    app = create_app(settings)
    client = app.test_client()
    job_ids = {}
    for caller, user in (("owner", "alice"), ("other-user", "bob")):
        spec = quickstart(epochs=1)
        spec["name"] = SECRET[user]
        spec["model"]["layers"][1]["config"]["units"] = 16
        response = client.post("/api/v1/jobs", json=spec, headers=headers[caller])
        assert response.status_code == 202, response.get_data(as_text=True)
        job_ids[user] = response.get_json()["id"]
        run_job(settings, job_ids[user])
        job = client.get(f"/api/v1/jobs/{job_ids[user]}", headers=headers[caller]).get_json()
        assert job["status"] == "succeeded", job
    dataset_ids = {}
    for caller, user in (("owner", "alice"), ("other-user", "bob")):
        response = client.post(
            "/api/v1/datasets", data={"file": (io.BytesIO(_npz()), "d.npz"), "name": SECRET[user]},
            headers=headers[caller],
        )  # fmt: skip
        assert response.status_code == 201, response.get_data(as_text=True)
        dataset_ids[user] = response.get_json()["id"]
    uses = quickstart(epochs=1)
    uses["dataset"] = {"id": dataset_ids["alice"], "scale": 255.0}
    response = client.post("/api/v1/jobs", json=uses, headers=headers["owner"])
    assert response.status_code == 202, response.get_data(as_text=True)  # stays queued
    sweep_ids = {}
    for caller, user in (("owner", "alice"), ("other-user", "bob")):
        response = client.post("/api/v1/sweeps", json={**SWEEP, "name": SECRET[user]},
                               headers=headers[caller])  # fmt: skip
        assert response.status_code == 202, response.get_data(as_text=True)
        sweep_ids[user] = response.get_json()["id"]
        response = client.post(f"/api/v1/sweeps/{sweep_ids[user]}/cancel", headers=headers[caller])
        assert response.get_json()["status"] == "cancelled"
    upload_ids = {}
    for caller, user in (("owner", "alice"), ("other-user", "bob")):
        response = client.post("/api/v1/uploads", json={"size": 10, "name": SECRET[user]},
                               headers=headers[caller])  # fmt: skip
        assert response.status_code == 201, response.get_data(as_text=True)
        upload_ids[user] = response.get_json()["id"]
    for caller, user in (("owner", "alice"), ("other-user", "bob")):
        response = client.post(f"/api/v1/models/{MODEL[user]}/versions",
                               json={"job_id": job_ids[user]}, headers=headers[caller])  # fmt: skip
        assert response.status_code == 201, response.get_data(as_text=True)
    response = client.put(f"/api/v1/models/{MODEL['alice']}/aliases/champion",
                          json={"version": 1}, headers=headers["owner"])  # fmt: skip
    assert response.status_code == 200, response.get_data(as_text=True)
    webhooks = {}
    for caller, user in (("owner", "alice"), ("other-user", "bob")):
        response = client.post("/api/v1/webhooks", json={"url": WEBHOOK_URL,
                               "description": SECRET[user]}, headers=headers[caller])  # fmt: skip
        assert response.status_code == 201, response.get_data(as_text=True)
        webhooks[user] = response.get_json()["id"]
    response = client.post(f"/api/v1/webhooks/{webhooks['alice']}/ping", headers=headers["owner"])
    webhooks["delivery"] = response.get_json()["id"]
    batch_ids = {}
    for caller, user in (("owner", "alice"), ("other-user", "bob")):
        body = {"job_id": job_ids[user], "dataset": {"id": dataset_ids[user]}, "name": SECRET[user]}
        response = client.post("/api/v1/batch-predictions", json=body, headers=headers[caller])
        assert response.status_code == 202, response.get_data(as_text=True)
        batch_ids[user] = response.get_json()["id"]
    run_job(settings, batch_ids["alice"])
    yield World(app, settings, headers, job_ids, dataset_ids, sweep_ids, upload_ids, webhooks,
                batch_ids)  # fmt: skip


def _npz() -> bytes:
    rng = np.random.default_rng(0)
    out = io.BytesIO()
    np.savez(out, x_train=rng.integers(0, 255, (8, 28, 28), dtype=np.uint8),
             y_train=rng.integers(0, 10, 8, dtype=np.uint8))  # fmt: skip
    return out.getvalue()


def _call(
    client: FlaskClient,
    endpoint: Endpoint,
    job_id: str,
    headers: dict[str, str],
    dataset_id: str = "0" * 32,
    sweep_id: str = "0" * 32,
    upload_id: str = "0" * 32,
    names: tuple[str, str] = (MODEL["alice"], "champion"),
    hook: tuple[str, str] = ("0" * 32, "0" * 32),
    batch_id: str = "0" * 32,
) -> Any:
    url = (endpoint.rule + endpoint.query).replace("<job_id>", job_id)
    url = url.replace("<batch_id>", batch_id)
    url = url.replace("<dataset_id>", dataset_id)
    url = url.replace("<webhook_id>", hook[0]).replace("<delivery_id>", hook[1])
    url = url.replace("<sweep_id>", sweep_id).replace("<upload_id>", upload_id)
    url = url.replace("<name>", names[0]).replace("<model:name>", names[0])
    url = url.replace("<alias>", names[1]).replace("<model:alias>", names[1])
    url = url.replace("<int:n>", "1").replace("<int:version>", "1")
    if isinstance(endpoint.body, dict) and endpoint.body.get("job_id") == "<job_id>":
        body = {**endpoint.body, "job_id": job_id}
        return client.open(url, method=endpoint.method, json=body, headers=headers)
    if endpoint.raw is not None:
        return client.open(url, method=endpoint.method, data=endpoint.raw, headers=headers)
    if endpoint.upload:
        data = {"file": (io.BytesIO(_npz()), "d.npz")}
        return client.open(url, method=endpoint.method, data=data, headers=headers)
    return client.open(url, method=endpoint.method, json=endpoint.body, headers=headers)


def _jobs_in_db(world: World) -> int:
    with session_scope(world.settings.database_url) as s:
        return s.scalar(select(func.count()).select_from(Job)) or 0


def _batch_predictions_in_db(world: World) -> set[str]:
    with session_scope(world.settings.database_url) as s:
        return set(s.scalars(select(Job.id).where(Job.kind == JobKind.batch_predict)))


def test_every_route_is_in_the_table(world: World) -> None:
    walked = {(e.method, e.rule) for e in ENDPOINTS}
    for rule in world.app.url_map.iter_rules():
        if str(rule) in NOT_WALKED:
            continue
        for method in rule.methods or ():
            if method not in {"HEAD", "OPTIONS"}:
                assert (method, str(rule)) in walked, f"{method} {rule} is not in ENDPOINTS"


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.rule}{e.query}")
def test_endpoint_answers_each_caller(world: World, endpoint: Endpoint, caller: str) -> None:
    """Owner 2xx; another user 404 on alice's job; every bad token 401; no one sees another."""
    client = world.app.test_client()
    upload_id = world.upload_id(endpoint)
    names = world.prepare(endpoint) if caller == "owner" else (MODEL["alice"], "champion")
    hook = world.webhook(endpoint)
    batch_id = world.batch_id(endpoint)
    before = _jobs_in_db(world)
    response = _call(
        client, endpoint, world.job_ids["alice"], world.headers[caller],
        world.dataset_ids["alice"], world.sweep_ids["alice"], upload_id, names, hook, batch_id,
    )  # fmt: skip
    expected = CALLERS[caller]
    if expected is None or (caller == "other-user" and not endpoint.per_job):
        expected = endpoint.owner_status
    assert response.status_code == expected, response.get_data(as_text=True)

    if expected >= 400:
        body = response.get_json()
        if endpoint.rule.startswith(("/v1/", "/v2/")):  # the protocols' own error shape
            assert set(body) == {"error"} and isinstance(body["error"], str)
        else:
            assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
            codes = {401: "unauthorized", 404: "not_found", 409: "conflict"}
            assert body["error"]["code"] == codes[expected]
        assert _jobs_in_db(world) == before, "a refused request recorded something"
    # Nothing of the other user's, ever: not their job's id, name, or user name.
    seen_by = "bob" if caller == "other-user" else "alice"
    hidden = "alice" if seen_by == "bob" else "bob"
    text = response.get_data().decode("latin-1")
    if endpoint.per_job and expected >= 400:  # "no job '<the id sent>'" tells the caller nothing
        text = text.replace(world.job_ids["alice"], "<asked-for>")
        text = text.replace(world.dataset_ids["alice"], "<asked-for>")
        text = text.replace(world.sweep_ids["alice"], "<asked-for>")
        text = text.replace(upload_id, "<asked-for>").replace(hook[0], "<asked-for>")
        text = text.replace(batch_id, "<asked-for>")
        for quoted in (f"'{MODEL['alice']}'", f'"{MODEL["alice"]}"'):  # the name it asked for
            text = text.replace(quoted, "<asked-for>")
        text = text.replace(f"'{MODEL['alice']}'", "<asked-for>")  # the name it asked for
    secrets = (world.job_ids[hidden], world.dataset_ids[hidden], world.sweep_ids[hidden],
               world.upload_ids[hidden], SECRET[hidden], f'"{hidden}"', MODEL[hidden],
               world.webhooks[hidden], world.batch_ids[hidden])  # fmt: skip
    for secret in secrets:
        assert secret not in text, f"{caller} saw {secret!r} at {endpoint.rule}"
    if caller == "other-user" and endpoint.rule == "/api/v1/jobs" and endpoint.method == "GET":
        assert world.job_ids["bob"] in text  # bob's list is bob's own, not empty by accident


def test_other_users_job_is_indistinguishable_from_a_missing_one(world: World) -> None:
    client = world.app.test_client()
    bob = world.headers["other-user"]
    missing = "0" * 32
    for endpoint in (e for e in ENDPOINTS if e.per_job):
        upload_id = world.upload_id(endpoint)
        hook = world.webhook(endpoint)
        theirs = _call(
            client, endpoint, world.job_ids["alice"], bob, world.dataset_ids["alice"],
            world.sweep_ids["alice"], upload_id, hook=hook, batch_id=world.batch_ids["alice"],
        ).get_json()  # fmt: skip
        nobodys = _call(client, endpoint, missing, bob, missing, missing, missing).get_json()
        seen = _message(theirs)
        for asked in (world.job_ids["alice"], hook[0], world.dataset_ids["alice"],
                      world.sweep_ids["alice"], upload_id, world.batch_ids["alice"]):  # fmt: skip
            seen = seen.replace(asked, missing)
        assert seen == _message(nobodys), endpoint.rule


def _message(body: dict[str, Any]) -> str:
    """An error's message: the one error shape's, or the protocols' {"error": "..."}."""
    error = body["error"]
    return error if isinstance(error, str) else str(error["message"])


def test_me_names_the_caller_and_the_token(world: World) -> None:
    client = world.app.test_client()
    body = client.get("/api/v1/me", headers=world.headers["owner"]).get_json()
    token = world.headers["owner"]["Authorization"].removeprefix("Bearer ")
    assert body["name"] == "alice" and body["role"] == "user"
    assert body["token"]["prefix"] == token[:10] and body["token"]["expires_at"] is None
    assert token not in json.dumps(body)  # the token itself is never shown again
    assert body["limits"]["max_queued_jobs"] == world.settings.max_queued_jobs


def test_admin_lists_every_users_jobs(world: World) -> None:
    client = world.app.test_client()
    with session_scope(world.settings.database_url) as s:
        root = create_user(s, "root-lister", Role.admin)
        admin = {"Authorization": f"Bearer {issue_token(s, root)}"}
    everyone = client.get("/api/v1/jobs?all=true&per_page=100", headers=admin).get_json()
    owners = {job["id"]: job["owner"] for job in everyone["jobs"]}
    assert owners[world.job_ids["alice"]] == "alice" and owners[world.job_ids["bob"]] == "bob"
    assert everyone["total"] == _jobs_in_db(world) - len(_batch_predictions_in_db(world))
    assert not set(owners) & _batch_predictions_in_db(world)  # listed apart, not as jobs
    # Without all=true an administrator sees their own jobs like anyone; none yet.
    assert client.get("/api/v1/jobs", headers=admin).get_json()["total"] == 0
    # A user who asks for everyone's jobs is told no, and sees nothing of anyone's.
    refused = client.get("/api/v1/jobs?all=true", headers=world.headers["owner"])
    assert refused.status_code == 422, refused.get_data(as_text=True)
    assert refused.get_json()["error"]["details"] == {"field": "all"}


def test_get_job_for_lets_only_an_active_admin_reach_other_jobs(world: World) -> None:
    alices = world.job_ids["alice"]
    with session_scope(world.settings.database_url) as s:
        admin = create_user(s, "root-canceller", Role.admin)
        bob = s.scalar(select(User).where(User.name == "bob"))
        assert bob is not None
        assert get_job_for(s, admin, alices, admin_ok=True).id == alices
        with pytest.raises(NotFound):
            get_job_for(s, admin, alices)  # only where the caller says admins may act
        with pytest.raises(NotFound):
            get_job_for(s, bob, alices, admin_ok=True)
        admin.disabled = True
        with pytest.raises(NotFound):
            get_job_for(s, admin, alices, admin_ok=True)
