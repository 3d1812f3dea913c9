"""What a hostile user sent, in-process: each refused at the edge in the one error shape, nothing
stored, the API answering as before afterwards (gunicorn's own answers: test_hardening_live)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from shared.commands.database import migrate
from shared.settings import Settings
from shared.spec import inline
from tests.conftest import make_user
from tests.specs import quickstart
from tests.support import ROOT, postgres_database
from tests.web.test_api import assert_error, total_jobs
from tests.web.test_datasets import good, npz, stored, upload
from web import create_app
from web.status_cache import StatusCache

User = dict[str, Any]
JOBS = "/api/v1/jobs"


def _post(client: FlaskClient, user: User, path: str, raw: str | bytes) -> Any:
    return client.post(path, data=raw, headers={**user["headers"],
                       "Content-Type": "application/json"})  # fmt: skip


def _healthy(client: FlaskClient, user: User) -> None:
    r = client.post(JOBS, json=quickstart(epochs=1), headers=user["headers"])
    assert r.status_code == 202, r.get_data(as_text=True)


# -- JSON at the edge ------------------------------------------------------------------------


def test_a_body_nested_ten_thousand_deep_is_refused(client: FlaskClient, alice: User) -> None:
    raw = '{"name": "deep", "fit": ' + "[" * 10_000 + "]" * 10_000 + "}"
    error = assert_error(_post(client, alice, JOBS, raw), 422, "invalid_spec")
    assert "nested more than" in error["message"]
    raw = '{"instances": ' + "[" * 10_000 + "]" * 10_000 + "}"
    assert_error(_post(client, alice, f"{JOBS}/{'0' * 32}/predict", raw), 422, "invalid_input")
    assert total_jobs(client, alice) == 0
    _healthy(client, alice)


def test_a_body_nested_a_little_too_deep_names_where(client: FlaskClient, alice: User) -> None:
    spec = quickstart()
    deep: Any = 1
    for _ in range(70):
        deep = [deep]
    spec["model"]["layers"][1]["config"]["units"] = deep
    error = assert_error(client.post(JOBS, json=spec, headers=alice["headers"]), 422,
                         "invalid_spec")  # fmt: skip
    assert error["details"]["errors"][0]["field"].startswith("model.layers[1].config.units")
    assert total_jobs(client, alice) == 0


@pytest.fixture
def on_postgres(settings: Settings) -> Iterator[tuple[FlaskClient, User]]:
    """The API in this process on a PostgreSQL database of its own, and alice there."""
    with postgres_database() as url:
        migrate(url)
        uid, token = make_user(url, "alice")
        app = create_app(settings.model_copy(update={"database_url": url}))
        yield app.test_client(), {"id": uid, "headers": {"Authorization": f"Bearer {token}"}}


def test_a_nul_character_postgresql_cannot_store_is_refused_and_nothing_is_kept(
    on_postgres: tuple[FlaskClient, User],
) -> None:
    """PostgreSQL keeps no NUL in a text: such a value is 422 in the one shape (it was a 500),
    its request rolled back whole; a path holding one names nothing (404, on any database)."""
    client, alice = on_postgres
    refused = [
        _post(client, alice, JOBS, json.dumps(quickstart(epochs=1) | {"name": "a\x00b"})),
        _post(client, alice, "/api/v1/webhooks",
              json.dumps({"url": "https://93.184.215.14/hook", "description": "x\x00"})),
        _post(client, alice, "/api/v1/sweeps", json.dumps(
            json.loads((ROOT / "examples" / "sweep.json").read_text()) | {"name": "s\x00"})),
        client.get(f"{JOBS}?name=a%00b", headers=alice["headers"]),
    ]  # fmt: skip
    for r in refused:
        error = assert_error(r, 422, "invalid_input")
        assert "NUL" in error["message"], error
    assert total_jobs(client, alice) == 0
    assert client.get("/api/v1/webhooks", headers=alice["headers"]).json["webhooks"] == []
    assert client.get("/api/v1/sweeps", headers=alice["headers"]).json["sweeps"] == []
    assert_error(client.get(f"{JOBS}/a%00b", headers=alice["headers"]), 404, "not_found")
    _healthy(client, alice)  # the connection was handed back clean: the next request works


@pytest.mark.parametrize("number", ["1" + "0" * 400, "1e400", "-1" + "0" * 5000])
def test_numbers_that_do_not_fit_a_float_are_refused(
    client: FlaskClient, alice: User, number: str
) -> None:
    raw = '{"instances": [[1, 2, ' + number + "]]}"
    error = assert_error(_post(client, alice, f"{JOBS}/{'0' * 32}/predict", raw), 422,
                         "invalid_input")  # fmt: skip
    assert "float" in error["message"]
    spec = quickstart(validation_split=0.0)
    spec["fit"]["validation_data"] = {"x": [[[0] * 28] * 28], "y": ["__N__"]}
    raw = json.dumps(spec).replace('"__N__"', number)
    error = assert_error(_post(client, alice, JOBS, raw), 422, "invalid_spec")
    assert "float" in error["message"]
    assert total_jobs(client, alice) == 0
    _healthy(client, alice)


def test_a_huge_layer_name_is_refused_before_keras(client: FlaskClient, alice: User) -> None:
    spec = quickstart()
    spec["model"]["layers"][1]["config"]["name"] = "n" * 5_000_000
    error = assert_error(client.post(JOBS, json=spec, headers=alice["headers"]), 422,
                         "invalid_spec")  # fmt: skip
    assert error["details"]["errors"][0]["field"] == "model.layers[1].config.name"
    assert "at most 1024" in error["message"]
    assert total_jobs(client, alice) == 0


def test_malformed_json_is_a_400(client: FlaskClient, alice: User) -> None:
    assert_error(_post(client, alice, JOBS, b'{"name": '), 400, "bad_request")


def test_last_event_id_out_of_range_is_refused(client: FlaskClient, alice: User) -> None:
    job = client.post(JOBS, json=quickstart(), headers=alice["headers"]).json
    assert job is not None
    for query in (f"last_event_id={10**30}", f"last_event_id={2**63}", "last_event_id=1e3"):
        r = client.get(f"{JOBS}/{job['id']}/events?{query}", headers=alice["headers"])
        assert_error(r, 422, "invalid_input")
    r = client.get(f"{JOBS}/{job['id']}/events",
                   headers={**alice["headers"], "Last-Event-ID": "9" * 40})  # fmt: skip
    assert_error(r, 422, "invalid_input")


# -- inline data -----------------------------------------------------------------------------


def _inline(n: int) -> dict[str, Any]:
    spec = quickstart(validation_split=0.0)
    spec["fit"]["validation_data"] = {"x": [[[0.5] * 28] * 28] * n, "y": [1] * n}
    return spec


def test_inline_validation_data_over_the_limit_is_an_upload(
    settings: Settings, alice: User
) -> None:
    client = create_app(settings.model_copy(update={"max_inline_values": 10_000})).test_client()
    error = assert_error(client.post(JOBS, json=_inline(20), headers=alice["headers"]), 422,
                         "invalid_spec")  # fmt: skip
    assert "POST /api/v1/datasets" in error["message"] and error["details"]["limit"] == 10_000
    spec = quickstart()
    spec["fit"]["sample_weight"] = [1.0] * 10_001
    error = assert_error(client.post(JOBS, json=spec, headers=alice["headers"]), 422,
                         "invalid_spec")  # fmt: skip
    assert "upload" in error["message"]
    assert total_jobs(client, alice) == 0
    _healthy(client, alice)


def test_job_details_show_inline_arrays_as_their_shape(client: FlaskClient, alice: User) -> None:
    submitted = client.post(JOBS, json=_inline(3), headers=alice["headers"])
    assert submitted.status_code == 202, submitted.get_data(as_text=True)
    job = client.get(f"{JOBS}/{submitted.json['id']}", headers=alice["headers"]).json  # type: ignore[index]
    assert job is not None
    shown = job["spec"]["fit"]["validation_data"]
    assert shown["x"] == {"shape": [3, 28, 28], "values": 3 * 28 * 28, "note": inline.NOTE}
    assert shown["y"] == {"shape": [3], "values": 3, "note": inline.NOTE}
    assert job["spec"]["fit"]["epochs"] == quickstart()["fit"]["epochs"]  # the rest as sent


def test_the_status_cache_is_bounded_in_bytes() -> None:
    cache = StatusCache(max_bytes=10_000)

    class _Job:
        status, epochs_done, epochs_total, started_at, first_epoch = "running", 0, 1, None, None

    for i in range(50):
        body = {"id": f"job{i}", "spec": {"blob": "x" * 900}}
        cache.put(f"token{i}", _Job(), body, ("a", "b"), None)  # type: ignore[arg-type]
        assert cache.bytes <= 10_000
    assert len(cache._entries) < 12
    cache.put("big", _Job(), {"id": "big", "x": "y" * 20_000}, ("a", "b"), None)  # type: ignore[arg-type]
    assert cache.lookup("big", "big", ("a", "b")) is None and cache.bytes <= 10_000


# -- shares ----------------------------------------------------------------------------------


def test_one_user_holds_at_most_their_share_of_the_streams(
    settings: Settings, alice: User, bob: User
) -> None:
    app = create_app(settings.model_copy(update={"web_streams": 4, "web_streams_per_user": 2}))
    client = app.test_client()
    ids = [client.post(JOBS, json=quickstart(), headers=u["headers"]).json["id"]  # type: ignore[index]
           for u in (alice, alice, alice, bob)]  # fmt: skip
    held = [client.get(f"{JOBS}/{ids[i]}/events", headers=alice["headers"]) for i in (0, 1)]
    try:
        assert [r.status_code for r in held] == [200, 200]
        refused = client.get(f"{JOBS}/{ids[2]}/events", headers=alice["headers"])
        error = assert_error(refused, 429, "rate_limited")
        assert refused.headers["Retry-After"] and error["details"]["limit"] == 2
        other = client.get(f"{JOBS}/{ids[3]}/events", headers=bob["headers"])
        assert other.status_code == 200  # a slot of the process is still free for bob
        other.close()
    finally:
        for r in held:
            r.close()
    again = client.get(f"{JOBS}/{ids[2]}/events", headers=alice["headers"])
    assert again.status_code == 200  # closed streams give their share back
    again.close()


def _quota_client(settings: Settings, **limits: int) -> FlaskClient:
    return create_app(settings.model_copy(update=limits)).test_client()


def test_uploads_have_a_count_quota(settings: Settings, alice: User, bob: User) -> None:
    client = _quota_client(settings, max_datasets_per_user=2)
    for _ in range(2):
        assert upload(client, alice, npz(**good())).status_code == 201
    error = assert_error(upload(client, alice, npz(**good())), 429, "quota_exceeded")
    assert "delete" in error["message"] and error["details"]["limit"] == 2
    assert len(stored(settings)) == 2
    assert upload(client, bob, npz(**good())).status_code == 201  # a quota per user


def test_uploads_have_a_byte_quota(settings: Settings, alice: User) -> None:
    content = npz(**good())
    client = _quota_client(settings, max_dataset_bytes_per_user=len(content) * 2 + 10)
    for _ in range(2):
        assert upload(client, alice, content).status_code == 201
    assert_error(upload(client, alice, content), 429, "quota_exceeded")
    assert len(stored(settings)) == 2


def test_uploads_have_a_rate_limit(settings: Settings, alice: User) -> None:
    client = _quota_client(settings, upload_rate=3, upload_rate_window_seconds=60)
    for _ in range(3):
        assert upload(client, alice, npz(**good())).status_code == 201
    refused = upload(client, alice, npz(**good()))
    assert_error(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) > 0 and len(stored(settings)) == 3


def test_an_archive_of_many_members_is_refused_from_its_directory(
    client: FlaskClient, alice: User, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(60_000):
            archive.writestr(f"x_train.a{i}.npy", b"")
    opened: list[Any] = []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: opened.append(a))
    monkeypatch.setattr(zipfile.ZipFile, "__init__", lambda *a, **k: opened.append(a))
    error = assert_error(upload(client, alice, buffer.getvalue()), 422, "invalid_input")
    assert "60000 members" in error["message"] and error["details"]["limit"] == 32
    assert not opened and stored(settings) == []  # refused before the directory was parsed
    monkeypatch.undo()
    many = {f"x_train.a{i}": np.zeros((2, 1)) for i in range(33)} | {"y_train": np.zeros(2)}
    assert_error(upload(client, alice, npz(**many)), 422, "invalid_input")
    assert upload(client, alice, npz(**good())).status_code == 201


# -- headers ---------------------------------------------------------------------------------


def test_json_answers_carry_the_security_headers(client: FlaskClient, alice: User) -> None:
    for r in (client.get("/api/v1/me", headers=alice["headers"]),
              client.get(f"{JOBS}/nope", headers=alice["headers"]),
              client.get("/api/v1/me")):  # fmt: skip
        assert r.headers["Cache-Control"] == "no-store"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert "Server" not in r.headers


@pytest.mark.parametrize("path", ["/", "/jobs/abc", "/docs"])
def test_pages_have_a_csp_and_no_inline_script(client: FlaskClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src-attr")[0]
    assert r.headers["X-Frame-Options"] == "DENY"
    page = r.get_data(as_text=True)
    assert "<script>" not in page  # every script has a src, on this origin
    for src in [s.split('"')[1] for s in page.split("<script src=")[1:]]:
        assert client.get(src).status_code == 200, src


def test_the_fast_path_sends_the_routes_headers(
    app: Flask, client: FlaskClient, alice: User
) -> None:
    from shared.jobs import lifecycle

    job = client.post(JOBS, json=quickstart(), headers=alice["headers"]).json
    assert job is not None
    assert lifecycle.start(app.extensions["trainq"]["sessions"], job["id"], "test")
    routed = client.get(f"{JOBS}/{job['id']}", headers=alice["headers"])
    fast_path = app.wsgi_app
    to_flask, routed_again = fast_path.wsgi_app, []  # type: ignore[attr-defined]
    fast_path.wsgi_app = lambda e, s: routed_again.append(1) or to_flask(e, s)  # type: ignore[attr-defined]
    fast = client.get(f"{JOBS}/{job['id']}", headers=alice["headers"])
    assert fast.status_code == 200 and not routed_again  # answered before Flask
    drop = {"Content-Length", "Date"}
    assert {k: v for k, v in fast.headers.items() if k not in drop} == {
        k: v for k, v in routed.headers.items() if k not in drop
    }
