"""The registry's REST routes in-process: the contract's bodies and statuses, name rules as
422, a version an alias holds kept (409), another user's models and jobs not found."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from shared.models import JobStatus
from tests.shared.test_registry import fake_job
from tests.web.test_api import assert_error

MODELS = "/api/v1/models"
User = dict[str, Any]


def test_register_alias_list_get_delete(
    client: FlaskClient, alice: User, bob: User, sqlite_url: str
) -> None:
    h = alice["headers"]
    first, second = fake_job(sqlite_url, alice["id"]), fake_job(sqlite_url, alice["id"])
    r = client.post(f"{MODELS}/digits/versions", json={"job_id": first}, headers=h)
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.get_json()["name"] == "digits" and r.get_json()["version"] == 1
    assert r.headers["Location"] == f"{MODELS}/digits/versions/1"
    r = client.post(f"{MODELS}/digits/versions", json={"job_id": second}, headers=h)
    assert r.get_json()["version"] == 2 and r.get_json()["metrics"]["test"] == {"accuracy": 0.9}

    r = client.put(f"{MODELS}/digits/aliases/champion", json={"version": 1}, headers=h)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json() == {"name": "digits", "alias": "champion", "version": 1, "job_id": first}
    client.put(f"{MODELS}/digits/aliases/champion", json={"version": 2}, headers=h)

    detail = client.get(f"{MODELS}/digits", headers=h).get_json()
    assert detail["aliases"] == {"champion": 2}
    assert [(v["version"], v["job_id"], v["aliases"]) for v in detail["versions"]] == [
        (1, first, []), (2, second, ["champion"])
    ]  # fmt: skip
    listed = client.get(MODELS, headers=h).get_json()["models"]
    assert [(m["name"], m["versions"], m["latest_version"], m["aliases"]) for m in listed] == [
        ("digits", 2, 2, {"champion": 2})
    ]
    assert client.get(MODELS, headers=bob["headers"]).get_json() == {"models": []}
    version = client.get(f"{MODELS}/digits/versions/2", headers=h).get_json()
    assert version["aliases"] == ["champion"] and version["provenance"] == {"seed": 3}

    error = assert_error(client.delete(f"{MODELS}/digits/versions/2", headers=h), 409, "conflict")
    assert error["details"]["aliases"] == ["champion"]
    assert client.delete(f"{MODELS}/digits/versions/1", headers=h).status_code == 204
    assert_error(client.get(f"{MODELS}/digits/versions/1", headers=h), 404, "not_found")
    assert client.delete(f"{MODELS}/digits/aliases/champion", headers=h).status_code == 204
    assert_error(client.delete(f"{MODELS}/digits/aliases/champion", headers=h), 404, "not_found")
    assert client.delete(f"{MODELS}/digits", headers=h).status_code == 204
    assert_error(client.get(f"{MODELS}/digits", headers=h), 404, "not_found")


def test_what_cannot_be_registered_or_named(
    client: FlaskClient, alice: User, bob: User, sqlite_url: str
) -> None:
    h = alice["headers"]
    running = fake_job(sqlite_url, alice["id"], JobStatus.running)
    bobs = fake_job(sqlite_url, bob["id"])
    mine = fake_job(sqlite_url, alice["id"])
    post = f"{MODELS}/digits/versions"
    assert_error(client.post(post, json={"job_id": running}, headers=h), 409, "conflict")
    assert_error(client.post(post, json={"job_id": bobs}, headers=h), 404, "not_found")
    assert_error(client.post(post, json={}, headers=h), 422, "invalid_input")
    assert_error(client.post(post, json={"job_id": mine, "x": 1}, headers=h), 422, "invalid_input")
    error = assert_error(
        client.post(f"{MODELS}/-bad/versions", json={"job_id": mine}, headers=h),
        422, "invalid_input",
    )  # fmt: skip
    assert "letters, digits" in error["message"]
    assert client.get(MODELS, headers=h).get_json() == {"models": []}  # nothing recorded

    assert client.post(post, json={"job_id": mine}, headers=h).status_code == 201
    alias = f"{MODELS}/digits/aliases"
    for bad in ("7", "latest", "a" * 65):
        assert_error(client.put(f"{alias}/{bad}", json={"version": 1}, headers=h),
                     422, "invalid_input")  # fmt: skip
    assert_error(client.put(f"{alias}/c", json={"version": 0}, headers=h), 422, "invalid_input")
    assert_error(client.put(f"{alias}/c", json={"version": 9}, headers=h), 404, "not_found")
    assert_error(client.get(f"{MODELS}/digits/versions/{2**63}", headers=h), 404, "not_found")
    assert_error(client.get(f"{MODELS}/digits", headers=bob["headers"]), 404, "not_found")
    assert_error(client.put(f"{alias}/c", json={"version": 1}, headers=bob["headers"]),
                 404, "not_found")  # fmt: skip
