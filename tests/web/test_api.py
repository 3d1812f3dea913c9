"""The HTTP API in-process: real SQLite, a real private Redis, the one JSON error shape."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from sqlalchemy import update
from werkzeug.test import TestResponse

from shared.db import session_scope
from shared.models import Job, JobStatus
from shared.settings import Settings
from tests.specs import QUICKSTART, quickstart
from web import create_app

JOBS = "/api/v1/jobs"
Spec = dict[str, Any]
User = dict[str, Any]


def assert_error(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    """The response has this status and the one error shape with this code; its error."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"].strip(), error
    assert isinstance(error["details"], dict), error
    return error


def submit(client: FlaskClient, user: User, spec: Spec | None = None) -> TestResponse:
    return client.post(JOBS, json=QUICKSTART if spec is None else spec, headers=user["headers"])


def submit_ok(client: FlaskClient, user: User, spec: Spec | None = None) -> dict[str, Any]:
    response = submit(client, user, spec)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def total_jobs(client: FlaskClient, user: User) -> int:
    response = client.get(JOBS, headers=user["headers"])
    assert response.status_code == 200, response.get_data(as_text=True)
    return int(response.get_json()["total"])


def broker_message_ids(redis_url: str) -> set[str]:
    """The task ids of the messages waiting in Celery's default queue."""
    conn = redis.Redis.from_url(redis_url)
    try:
        return {json.loads(item)["headers"]["id"] for item in conn.lrange("celery", 0, -1)}
    finally:
        conn.close()


# -- health and authentication -------------------------------------------------------------


def test_healthz_reports_database_and_broker(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "broker": "ok"}


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize(
    "header",
    [None, "Token abc", "Bearer", "Bearer    ", "Bearer not-a-real-token"],
    ids=["missing", "wrong-scheme", "no-token", "blank-token", "unknown-token"],
)
def test_jobs_need_a_valid_token(
    client: FlaskClient, alice: User, method: str, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = getattr(client, method)(JOBS, json=QUICKSTART, headers=headers)
    assert_error(response, 401, "unauthorized")
    assert total_jobs(client, alice) == 0


# -- submitting ----------------------------------------------------------------------------


def test_submit_records_and_enqueues_the_job(
    client: FlaskClient, alice: User, redis_url: str
) -> None:
    response = submit(client, alice)
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    job_id = body["id"]
    assert job_id
    assert body["status"] == "queued"
    assert body["name"] == "quickstart"
    assert body["progress"]["epochs"] == 5
    assert body["progress"]["epochs_done"] == 0
    assert response.headers["Location"] == f"{JOBS}/{job_id}"

    found = client.get(response.headers["Location"], headers=alice["headers"])
    assert found.status_code == 200
    job = found.get_json()
    assert job["id"] == job_id
    assert job["status"] == "queued"
    assert job["history"] == []
    assert job["model"] is None
    assert job["spec"]["fit"]["epochs"] == 5

    assert job_id in broker_message_ids(redis_url)


def test_malformed_json_is_a_bad_request(client: FlaskClient, alice: User) -> None:
    response = client.post(
        JOBS, data="{not json", content_type="application/json", headers=alice["headers"]
    )
    error = assert_error(response, 400, "bad_request")
    assert "JSON" in error["message"]
    assert total_jobs(client, alice) == 0


def test_non_json_content_type_is_a_bad_request(client: FlaskClient, alice: User) -> None:
    response = client.post(
        JOBS, data=json.dumps(QUICKSTART), content_type="text/plain", headers=alice["headers"]
    )
    error = assert_error(response, 400, "bad_request")
    assert "application/json" in error["message"]
    assert total_jobs(client, alice) == 0


def _changed(change: Callable[[Spec], None]) -> Spec:
    spec = copy.deepcopy(QUICKSTART)
    change(spec)
    return spec


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param(
            _changed(lambda s: s["model"]["layers"][1].update(class_name="NoSuchLayer")),
            "model.layers[1].class_name",
            id="unknown-layer",
        ),
        pytest.param(
            _changed(lambda s: s["model"]["layers"][2]["config"].update(rate=float("nan"))),
            "model.layers[2].config.rate",
            id="nan-in-config",
        ),
        pytest.param(
            _changed(
                lambda s: s["model"]["layers"][1]["config"].update(
                    kernel_initializer={"class_name": "system", "config": {}}
                )
            ),
            "model.layers[1].config.kernel_initializer.class_name",
            id="nested-object-not-allowed",
        ),
        pytest.param(
            _changed(lambda s: s["dataset"].update(scale=float("inf"))),
            "dataset.scale",
            id="infinite-scale",
        ),
        pytest.param(
            _changed(lambda s: s["compile"].update(optimizer={"class_name": "Adam", "Config": {}})),
            "compile.optimizer.Config",
            id="typo-in-object",
        ),
        pytest.param(_changed(lambda s: s.update(Fit={})), "Fit", id="capitalised-typo"),
        pytest.param(
            _changed(lambda s: s["compile"].update(optimizer="nosuchopt")),
            "compile.optimizer",
            id="unknown-optimizer",
        ),
        pytest.param(quickstart(epochs="five"), "fit.epochs", id="epochs-wrong-type"),
        pytest.param(quickstart(epochs=0), "fit.epochs", id="epochs-zero"),
        pytest.param(quickstart(validation_split=1.5), "fit.validation_split", id="split"),
        pytest.param(quickstart(batch_size=-8), "fit.batch_size", id="negative-batch-size"),
        pytest.param(_changed(lambda s: s.update(fitt={"epochs": 2})), "fitt", id="unexpected-key"),
    ],
)
def test_invalid_spec_names_the_field(
    client: FlaskClient, alice: User, spec: Spec, field: str
) -> None:
    error = assert_error(submit(client, alice, spec), 422, "invalid_spec")
    first = error["details"]["errors"][0]
    assert first["field"] == field
    assert first["message"]
    assert error["message"].startswith(f"{field}: ")
    assert total_jobs(client, alice) == 0


def test_unknown_dataset(client: FlaskClient, alice: User) -> None:
    spec = _changed(lambda s: s["dataset"].update(name="no-such-dataset"))
    error = assert_error(submit(client, alice, spec), 422, "dataset_unavailable")
    assert "'no-such-dataset'" in error["message"]
    assert "mnist-sample" in error["message"]  # says which ones exist
    assert error["details"]["field"] == "dataset.name"
    assert total_jobs(client, alice) == 0


def test_keras_dataset_without_its_cache_file(
    client: FlaskClient, alice: User, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keras_home = tmp_path / "keras-home"
    keras_home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    spec = _changed(lambda s: s["dataset"].update(name="mnist"))
    error = assert_error(submit(client, alice, spec), 422, "dataset_unavailable")
    missing = str(keras_home / "datasets" / "mnist.npz")
    assert missing in error["message"]
    assert "to provide it, copy mnist.npz" in error["message"]
    assert error["details"]["missing"] == [missing]
    assert total_jobs(client, alice) == 0


def test_epochs_above_the_server_maximum(settings: Settings, alice: User) -> None:
    client = create_app(settings.model_copy(update={"max_epochs": 3})).test_client()
    error = assert_error(submit(client, alice, quickstart(epochs=4)), 422, "invalid_spec")
    assert "at most 3" in error["message"]
    assert error["details"]["field"] == "fit.epochs"
    assert total_jobs(client, alice) == 0
    assert submit(client, alice, quickstart(epochs=3)).status_code == 202


def test_body_over_the_size_limit(settings: Settings, alice: User) -> None:
    client = create_app(settings.model_copy(update={"max_request_bytes": 2048})).test_client()
    spec = quickstart()
    spec["name"] = "x" * 150
    spec["model"]["layers"] += [{"class_name": "Dropout", "config": {"rate": 0.1}}] * 60
    assert len(json.dumps(spec)) > 2048
    assert_error(submit(client, alice, spec), 413, "payload_too_large")
    assert total_jobs(client, alice) == 0
    assert submit(client, alice).status_code == 202  # the quickstart fits under the limit


class _Counted(io.BytesIO):
    """A request body that counts what the app reads of it."""

    taken = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.taken += len(data)
        return data


def _post_raw(client: FlaskClient, user: User, body: bytes, chunked: bool = False) -> Any:
    stream = _Counted(body)
    headers, extra = dict(user["headers"]), {}
    if chunked:  # no length: as gunicorn hands on a chunked body, a stream it ends itself
        headers["Transfer-Encoding"] = "chunked"
        extra = {"wsgi.input_terminated": True}
    response = client.post(JOBS, input_stream=stream, content_type="application/json",
                           headers=headers, environ_overrides=extra)  # fmt: skip
    return response, stream.taken


def _named(name_chars: int) -> bytes:
    spec = quickstart()
    spec["model"]["layers"][1]["config"]["name"] = "n" * name_chars
    return json.dumps(spec).encode()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_long_string_in_a_body_over_the_limit_is_named(
    settings: Settings, alice: User, chunked: bool
) -> None:
    limit = 8192
    client = create_app(settings.model_copy(update={"max_spec_bytes": limit})).test_client()
    response, taken = _post_raw(client, alice, _named(2_000_000), chunked)
    error = assert_error(response, 422, "invalid_spec")
    assert taken == limit + chunked  # the first bytes only (and one more if no length is given)
    [refusal] = error["details"]["errors"]
    assert refusal["field"] == "model.layers[1].config.name"
    assert refusal["message"].startswith("a string of at least ")
    assert refusal["message"].endswith("characters; at most 1024")
    assert error["message"] == f"{refusal['field']}: {refusal['message']}"
    # As a body within the limit with a string too long is refused: the same shape and field.
    within = assert_error(_post_raw(client, alice, _named(2000))[0], 422, "invalid_spec")
    assert within["details"] == {
        "errors": [
            {"field": refusal["field"], "message": "a string of 2000 characters; at most 1024"}
        ]
    }
    assert total_jobs(client, alice) == 0
    response, _ = _post_raw(client, alice, json.dumps(quickstart()).encode(), chunked)
    assert response.status_code == 202, response.get_data(as_text=True)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_for_its_size_alone_is_413_read_no_further(
    settings: Settings, alice: User, chunked: bool
) -> None:
    limit = 8192
    client = create_app(settings.model_copy(update={"max_spec_bytes": limit})).test_client()
    spec = quickstart()
    spec["fit"]["sample_weight"] = [1.0] * 100_000  # big, but no string over the limit
    embedded = {**quickstart(), "model": {"json": json.dumps({"x": "n" * 100_000})}}
    for body in (spec, embedded):  # a model.json is a document of its own: too large, no more
        response, taken = _post_raw(client, alice, json.dumps(body).encode(), chunked)
        assert_error(response, 413, "payload_too_large")
        assert taken == limit + chunked
    assert total_jobs(client, alice) == 0


# -- ownership -----------------------------------------------------------------------------


def test_other_users_job_is_not_found(client: FlaskClient, alice: User, bob: User) -> None:
    job_id = submit_ok(client, alice)["id"]
    url = f"{JOBS}/{job_id}"
    assert_error(client.get(url, headers=bob["headers"]), 404, "not_found")
    assert_error(
        client.post(f"{url}/predict", json={"instances": [[0.0]]}, headers=bob["headers"]),
        404,
        "not_found",
    )
    assert_error(client.get(f"{url}/model", headers=bob["headers"]), 404, "not_found")
    bobs = client.get(JOBS, headers=bob["headers"]).get_json()
    assert bobs["total"] == 0 and bobs["jobs"] == []
    assert client.get(url, headers=alice["headers"]).status_code == 200


def test_unknown_job_is_not_found(client: FlaskClient, alice: User) -> None:
    error = assert_error(
        client.get(f"{JOBS}/0123456789abcdef0123456789abcdef", headers=alice["headers"]),
        404,
        "not_found",
    )
    assert "0123456789abcdef0123456789abcdef" in error["message"]


# -- listing -------------------------------------------------------------------------------


def test_list_is_newest_first_and_paginated(client: FlaskClient, alice: User) -> None:
    ids = [submit_ok(client, alice, {**QUICKSTART, "name": f"job {i}"})["id"] for i in range(3)]

    first = client.get(f"{JOBS}?per_page=2", headers=alice["headers"])
    assert first.status_code == 200
    page1 = first.get_json()
    assert (page1["total"], page1["pages"], page1["page"], page1["per_page"]) == (3, 2, 1, 2)
    assert [j["id"] for j in page1["jobs"]] == [ids[2], ids[1]]

    page2 = client.get(f"{JOBS}?per_page=2&page=2", headers=alice["headers"]).get_json()
    assert (page2["total"], page2["pages"], page2["page"]) == (3, 2, 2)
    assert [j["id"] for j in page2["jobs"]] == [ids[0]]

    created = [datetime.fromisoformat(j["created_at"]) for j in page1["jobs"] + page2["jobs"]]
    assert created == sorted(created, reverse=True)
    assert "history" not in page1["jobs"][0]


def test_list_filters_by_status(client: FlaskClient, alice: User, sqlite_url: str) -> None:
    ids = [submit_ok(client, alice)["id"] for _ in range(3)]
    with session_scope(sqlite_url) as s:
        s.execute(update(Job).where(Job.id == ids[1]).values(status=JobStatus.failed))

    failed = client.get(f"{JOBS}?status=failed", headers=alice["headers"]).get_json()
    assert failed["total"] == 1
    assert [(j["id"], j["status"]) for j in failed["jobs"]] == [(ids[1], "failed")]

    queued = client.get(f"{JOBS}?status=queued", headers=alice["headers"]).get_json()
    assert queued["total"] == 2
    assert {j["id"] for j in queued["jobs"]} == {ids[0], ids[2]}

    succeeded = client.get(f"{JOBS}?status=succeeded", headers=alice["headers"]).get_json()
    assert (succeeded["total"], succeeded["jobs"]) == (0, [])


def test_list_filters_by_name_and_creation_time(
    client: FlaskClient, alice: User, sqlite_url: str
) -> None:
    names = ["MNIST baseline", "mnist 50%_wide", "cifar small"]
    ids = [submit_ok(client, alice, {**QUICKSTART, "name": n})["id"] for n in names]
    created = [
        "2026-11-30T23:59:59+00:00",
        "2026-12-01T00:00:00+00:00",
        "2026-12-02T08:00:00+00:00",
    ]
    with session_scope(sqlite_url) as s:
        for job_id, when in zip(ids, created, strict=True):
            s.execute(
                update(Job).where(Job.id == job_id).values(created_at=datetime.fromisoformat(when))
            )

    def listed(query: str) -> list[str]:
        r = client.get(f"{JOBS}?{query}", headers=alice["headers"])
        assert r.status_code == 200, r.get_data(as_text=True)
        return [j["id"] for j in r.get_json()["jobs"]]

    assert listed("name=mnist") == [ids[1], ids[0]]  # any case, newest first
    assert listed("name=50%25_") == [ids[1]]  # % and _ are the characters, not wildcards
    assert listed("name=%25") == [ids[1]]
    assert listed("created_after=2026-12-01") == [ids[2], ids[1]]  # from midnight UTC
    assert listed("created_before=2026-12-01") == [ids[0]]  # up to midnight, not at it
    assert listed("created_after=2026-12-01&created_before=2026-12-02") == [ids[1]]
    assert listed("created_after=2026-12-02T09:00:00%2B01:00") == [ids[2]]  # 08:00 UTC
    assert listed("created_after=2026-12-02T08:00:01Z") == []
    assert listed("created_before=2026-12-01T00:00") == [ids[0]]  # no offset: UTC
    assert listed("name=MNIST&created_after=2026-12-01&status=queued") == [ids[1]]
    assert listed("name=mnist&per_page=1&page=2") == [ids[0]]
    page = client.get(f"{JOBS}?name=mnist&per_page=1", headers=alice["headers"]).get_json()
    assert (page["total"], page["pages"]) == (2, 2)  # the total counts the filtered jobs


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("name=", "name"),
        ("name=" + "x" * 201, "name"),
        ("created_after=yesterday", "created_after"),
        ("created_after=1700000000", "created_after"),
        ("created_before=2026-13-01", "created_before"),
        ("created_before=2026-12-01T10:00:00%2B24:00", "created_before"),
        ("created_after=0001-01-01T00:00:00%2B01:00", "created_after"),
        ("created_after=2026-12-01%0A", "created_after"),
    ],
)
def test_list_rejects_bad_filters(client: FlaskClient, alice: User, query: str, field: str) -> None:
    error = assert_error(
        client.get(f"{JOBS}?{query}", headers=alice["headers"]), 422, "invalid_input"
    )
    assert error["details"]["field"] == field
    assert error["message"].startswith(f"query parameter {field}: "), error
    assert "Value error" not in error["message"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("per_page=0", "per_page"),
        ("per_page=101", "per_page"),
        ("page=abc", "page"),
        ("page=0", "page"),
        ("status=bogus", "status"),
        ("sort=name", "sort"),
    ],
)
def test_list_rejects_bad_query(client: FlaskClient, alice: User, query: str, field: str) -> None:
    error = assert_error(
        client.get(f"{JOBS}?{query}", headers=alice["headers"]), 422, "invalid_input"
    )
    assert error["details"]["field"] == field
    assert field in error["message"]


# -- predict and download before the job has succeeded --------------------------------------


def test_predict_on_a_queued_job_is_a_conflict(client: FlaskClient, alice: User) -> None:
    job_id = submit_ok(client, alice)["id"]
    response = client.post(
        f"{JOBS}/{job_id}/predict", json={"instances": [[0.0] * 784]}, headers=alice["headers"]
    )
    error = assert_error(response, 409, "conflict")
    assert "queued" in error["message"]
    assert error["details"]["status"] == "queued"


def test_predict_without_instances_on_a_queued_job(client: FlaskClient, alice: User) -> None:
    job_id = submit_ok(client, alice)["id"]
    response = client.post(f"{JOBS}/{job_id}/predict", json={}, headers=alice["headers"])
    assert_error(response, 409, "conflict")  # the job's state is checked before the body


def test_download_of_a_queued_job_is_a_conflict(client: FlaskClient, alice: User) -> None:
    job_id = submit_ok(client, alice)["id"]
    for query in ("", "?format=keras", "?format=h5"):
        response = client.get(f"{JOBS}/{job_id}/model{query}", headers=alice["headers"])
        error = assert_error(response, 409, "conflict")
        assert "queued" in error["message"]


def test_download_in_an_unknown_format(client: FlaskClient, alice: User) -> None:
    job_id = submit_ok(client, alice)["id"]
    response = client.get(f"{JOBS}/{job_id}/model?format=zip", headers=alice["headers"])
    error = assert_error(response, 422, "invalid_input")
    assert "'zip'" in error["message"]
    assert error["details"]["field"] == "format"


# -- routing -------------------------------------------------------------------------------


def test_unknown_route_is_json_404(client: FlaskClient) -> None:
    assert_error(client.get("/api/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_json_405(client: FlaskClient, alice: User) -> None:
    assert_error(client.delete(JOBS, headers=alice["headers"]), 405, "method_not_allowed")
