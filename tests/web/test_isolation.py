"""Every endpoint, as every kind of caller: the owner, another user, and five kinds of bad token.

The table ENDPOINTS lists each route of the API; a route that is not in it fails
test_every_route_is_in_the_table, so a new endpoint is one more line here.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
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
from shared.models import Job, Role, User, utcnow
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
        return any(f"<{kind}_id>" in self.rule for kind in ("job", "dataset", "sweep", "upload"))


ENDPOINTS = [
    Endpoint("GET", "/api/v1/me"),
    Endpoint("GET", "/api/v1/jobs"),
    Endpoint("POST", "/api/v1/jobs", body=quickstart(epochs=1), owner_status=202),
    Endpoint("GET", "/api/v1/jobs/<job_id>"),
    Endpoint("POST", "/api/v1/jobs/<job_id>/predict", body=THREE_DIGITS),
    Endpoint("GET", "/api/v1/jobs/<job_id>/model", query="?format=keras"),
    Endpoint("GET", "/api/v1/jobs/<job_id>/model", query="?format=h5"),
    # The owner's job has finished: cancelling it is a conflict (cancel's 200/202 are in
    # tests/web/test_cancel.py); what matters here is that nobody else learns it exists.
    Endpoint("POST", "/api/v1/jobs/<job_id>/cancel", owner_status=409),
    Endpoint("GET", "/api/v1/jobs/<job_id>/events"),  # the job has ended: the stream closes
    Endpoint("GET", "/api/v1/jobs/<job_id>/tensorboard"),
    Endpoint("POST", "/api/v1/datasets", upload=True, owner_status=201),
    Endpoint("GET", "/api/v1/datasets"),
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
]
# Public: no user's data (the dashboard's pages are shells that call the API with a token).
NOT_WALKED = {
    "/healthz", "/static/<path:filename>", "/openapi.json", "/docs", "/docs/start.js",
    "/docs/static/<path:filename>",
    "/metrics", "/", "/jobs/<job_id>", "/sweeps", "/sweeps/<sweep_id>",
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

    def upload_id(self, endpoint: Endpoint) -> str:
        """Alice's upload in parts; for a DELETE, a new one of hers, for this call."""
        if endpoint.method != "DELETE" or "<upload_id>" not in endpoint.rule:
            return self.upload_ids["alice"]
        r = self.app.test_client().post("/api/v1/uploads", json={"size": 10},
                                        headers=self.headers["owner"])  # fmt: skip
        assert r.status_code == 201, r.get_data(as_text=True)
        return str(r.get_json()["id"])


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
    yield World(app, settings, headers, job_ids, dataset_ids, sweep_ids, upload_ids)


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
) -> Any:
    url = endpoint.rule.replace("<job_id>", job_id).replace("<dataset_id>", dataset_id)
    url = url.replace("<sweep_id>", sweep_id).replace("<upload_id>", upload_id)
    url = url.replace("<int:n>", "1") + endpoint.query
    if endpoint.raw is not None:
        return client.open(url, method=endpoint.method, data=endpoint.raw, headers=headers)
    if endpoint.upload:
        data = {"file": (io.BytesIO(_npz()), "d.npz")}
        return client.open(url, method=endpoint.method, data=data, headers=headers)
    return client.open(url, method=endpoint.method, json=endpoint.body, headers=headers)


def _jobs_in_db(world: World) -> int:
    with session_scope(world.settings.database_url) as s:
        return s.scalar(select(func.count()).select_from(Job)) or 0


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
    before = _jobs_in_db(world)
    upload_id = world.upload_id(endpoint)
    response = _call(
        client, endpoint, world.job_ids["alice"], world.headers[caller],
        world.dataset_ids["alice"], world.sweep_ids["alice"], upload_id,
    )  # fmt: skip
    expected = CALLERS[caller]
    if expected is None or (caller == "other-user" and not endpoint.per_job):
        expected = endpoint.owner_status
    assert response.status_code == expected, response.get_data(as_text=True)

    if expected >= 400:
        body = response.get_json()
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
        text = text.replace(upload_id, "<asked-for>")
    secrets = (world.job_ids[hidden], world.dataset_ids[hidden], world.sweep_ids[hidden],
               world.upload_ids[hidden], SECRET[hidden], f'"{hidden}"')  # fmt: skip
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
        theirs = _call(
            client, endpoint, world.job_ids["alice"], bob, world.dataset_ids["alice"],
            world.sweep_ids["alice"], upload_id,
        ).get_json()  # fmt: skip
        nobodys = _call(client, endpoint, missing, bob, missing, missing, missing).get_json()
        assert (
            theirs["error"]["message"]
            .replace(world.job_ids["alice"], missing)
            .replace(world.dataset_ids["alice"], missing)
            .replace(world.sweep_ids["alice"], missing)
            .replace(upload_id, missing)
            == (nobodys["error"]["message"])
        )


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
    assert everyone["total"] == _jobs_in_db(world)
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
