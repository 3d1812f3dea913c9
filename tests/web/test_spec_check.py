"""POST /api/v1/jobs/check: a spec checked as submit checks it before reading data, no job made."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from tests.specs import quickstart
from tests.web.test_api import assert_error

CHECK = "/api/v1/jobs/check"
User = dict[str, Any]


def _jobs(client: FlaskClient, user: User) -> int:
    return int(client.get("/api/v1/jobs", headers=user["headers"]).get_json()["total"])


def test_a_spec_passes_or_gets_the_422_submit_would_give(client: FlaskClient, alice: User) -> None:
    spec = quickstart(epochs=1)
    without_data = {k: v for k, v in spec.items() if k != "dataset"}
    for body in (spec, without_data):  # remote_fit asks before its arrays are uploaded
        response = client.post(CHECK, json=body, headers=alice["headers"])
        assert response.status_code == 204, response.get_data(as_text=True)
    lambda_layer = {**without_data, "model": {"layers": [{"class_name": "Lambda", "config": {}}]}}
    for bad, field in ((lambda_layer, "model.layers[0].class_name"),
                       ({**without_data, "fit": {"epochs": 0}}, "fit.epochs")):  # fmt: skip
        error = assert_error(client.post(CHECK, json=bad, headers=alice["headers"]), 422,
                             "invalid_spec")  # fmt: skip
        assert [e["field"] for e in error["details"]["errors"]] == [field]
        submitted = client.post("/api/v1/jobs", json={**bad, "dataset": spec["dataset"]},
                                headers=alice["headers"])  # fmt: skip
        assert submitted.get_json() == {"error": error}
    assert _jobs(client, alice) == 0
    assert_error(client.post(CHECK, data="{", headers={**alice["headers"],
                 "Content-Type": "application/json"}), 400, "bad_request")  # fmt: skip
    assert_error(client.post(CHECK, json=spec), 401, "unauthorized")
