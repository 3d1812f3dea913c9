"""TF Serving's REST API and the Open Inference Protocol in process, on a registered two-output
model: the same answers as the native predict, their own error shape, and another user's model
not found."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from shared.db import session_scope, sessions
from shared.jobs import lifecycle
from shared.models import User
from shared.registry import service
from shared.settings import Settings
from tests.conformance.test_models import two_output_model
from tests.specs import quickstart

JOBS = "/api/v1/jobs"


@pytest.fixture
def heads(client: FlaskClient, settings: Settings, alice: dict[str, Any]) -> str:
    """A succeeded job whose model has inputs a and b and outputs cls and reg, registered by
    alice as "heads" (version 1)."""
    import keras

    job = client.post(JOBS, json=quickstart(), headers=alice["headers"]).json
    keras.utils.set_random_seed(3)
    path = settings.artifacts / job["id"] / "model.keras"
    path.parent.mkdir(parents=True)
    two_output_model().save(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    db = sessions(settings.database_url)
    assert lifecycle.start(db, job["id"], "test-worker")
    files = {"keras": (f"{job['id']}/model.keras", path.stat().st_size, sha)}
    assert lifecycle.succeed(db, job["id"], {"accuracy": 0.5}, files)
    with session_scope(settings.database_url) as s:
        service.register(s, s.get(User, alice["id"]), "heads", job["id"])
    return str(job["id"])


def _rows(n: int = 3) -> list[dict[str, list[float]]]:
    rng = np.random.default_rng(1)
    return [{"a": rng.normal(size=4).tolist(), "b": rng.normal(size=3).tolist()} for _ in range(n)]


def _native(client: FlaskClient, job_id: str, alice: dict[str, Any]) -> list[dict[str, Any]]:
    r = client.post(f"{JOBS}/{job_id}/predict", json={"instances": _rows()},
                    headers=alice["headers"])  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json["predictions"]  # type: ignore[no-any-return]


def test_tf_serving_paths_answer_the_native_predict(
    client: FlaskClient, heads: str, alice: dict[str, Any]
) -> None:
    native = _native(client, heads, alice)
    assert set(native[0]["outputs"]) == {"cls", "reg"}
    assert set(native[0]["outputs"]["cls"]) == {"logits", "probabilities", "class"}
    assert set(native[0]["outputs"]["reg"]) == {"values"}
    h = alice["headers"]
    for path in ["/v1/models/heads:predict", "/v1/models/heads/versions/1:predict"]:
        r = client.post(path, json={"instances": _rows()}, headers=h)
        assert r.status_code == 200, r.text
        for ours, theirs in zip(r.json["predictions"], native, strict=True):
            assert ours["cls/classes"] == theirs["outputs"]["cls"]["class"]
            np.testing.assert_allclose(ours["cls/logits"], theirs["outputs"]["cls"]["logits"],
                                       atol=1e-5)  # fmt: skip
            np.testing.assert_allclose(ours["reg"], theirs["outputs"]["reg"]["values"], atol=1e-5)
    columns = {k: [row[k] for row in _rows()] for k in ("a", "b")}
    r = client.post("/v1/models/heads:predict", json={"inputs": columns}, headers=h)
    assert r.json["outputs"]["cls/classes"] == [p["outputs"]["cls"]["class"] for p in native]
    status = client.get("/v1/models/heads", headers=h).json
    assert status["model_version_status"][0]["version"] == "1"
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    meta = client.get("/v1/models/heads/metadata", headers=h).json
    signature = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert set(signature["inputs"]) == {"a", "b"}
    assert signature["outputs"]["cls/classes"]["dtype"] == "DT_INT64"


def test_tf_serving_errors_in_its_own_shape(
    client: FlaskClient, heads: str, alice: dict[str, Any], bob: dict[str, Any]
) -> None:
    path = "/v1/models/heads:predict"
    for body, status in [({"instances": [[1.0, 2.0]]}, 400), ({"nope": 1}, 400),
                         ({"instances": _rows(), "signature_name": "x"}, 400)]:  # fmt: skip
        r = client.post(path, json=body, headers=alice["headers"])
        assert r.status_code == status and set(r.json) == {"error"}, r.text
    r = client.post(path, data=b"{not json", headers=alice["headers"])
    assert r.status_code == 400 and isinstance(r.json["error"], str)
    rows: list[dict[str, Any]] = _rows(1)
    rows[0]["a"][0] = "__N__"  # an integer too large for a float, in both of its forms
    for key, value in [("instances", rows), ("inputs", {"a": [rows[0]["a"]], "b": [[0.0] * 3]})]:
        raw = json.dumps({key: value}).replace('"__N__"', "1" + "0" * 400)
        r = client.post(path, data=raw, headers={**alice["headers"],
                        "Content-Type": "application/json"})  # fmt: skip
        assert r.status_code == 400 and "float" in r.json["error"], r.text
    r = client.post(path, json={"instances": _rows()}, headers=bob["headers"])
    assert r.status_code == 404 and set(r.json) == {"error"}  # another user's model
    r = client.post(path, json={"instances": _rows()})
    assert r.status_code == 401 and set(r.json) == {"error"}
    r = client.post("/v1/models/heads/labels/champion:predict", json={"instances": _rows()},
                    headers=alice["headers"])  # fmt: skip
    assert r.status_code == 404 and "champion" in r.json["error"]


def _v2_inputs(binary: bool) -> tuple[list[dict[str, Any]], bytes]:
    arrays = {k: np.array([row[k] for row in _rows()], "float32") for k in ("a", "b")}
    tensors = []
    for name, array in arrays.items():
        tensor: dict[str, Any] = {"name": name, "shape": list(array.shape), "datatype": "FP32"}
        if binary:
            tensor["parameters"] = {"binary_data_size": array.nbytes}
        else:
            tensor["data"] = array.reshape(-1).tolist()
        tensors.append(tensor)
    return tensors, b"".join(a.tobytes() for a in arrays.values()) if binary else b""


@pytest.mark.parametrize("binary", [False, True])
def test_v2_infer_answers_the_native_predict(
    client: FlaskClient, heads: str, alice: dict[str, Any], binary: bool
) -> None:
    import json

    native = _native(client, heads, alice)
    tensors, raw = _v2_inputs(binary)
    header = json.dumps({"inputs": tensors}).encode()
    headers = {**alice["headers"], "Inference-Header-Content-Length": str(len(header))}
    r = client.post("/v2/models/heads/versions/1/infer", data=header + raw, headers=headers,
                    content_type="application/octet-stream")  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json["model_name"] == "heads" and r.json["model_version"] == "1"
    outputs = {o["name"]: o for o in r.json["outputs"]}
    assert outputs["cls/classes"]["data"] == [p["outputs"]["cls"]["class"] for p in native]
    logits = np.reshape(outputs["cls/logits"]["data"], outputs["cls/logits"]["shape"])
    np.testing.assert_allclose(logits, [p["outputs"]["cls"]["logits"] for p in native], atol=1e-5)


def test_v2_metadata_health_and_errors(
    client: FlaskClient, heads: str, alice: dict[str, Any], bob: dict[str, Any]
) -> None:
    h = alice["headers"]
    assert client.get("/v2/health/live").json == {"live": True}
    assert client.get("/v2/health/ready").json == {"ready": True}
    assert client.get("/v2").json["extensions"] == ["binary_tensor_data"]
    meta = client.get("/v2/models/heads", headers=h).json
    assert meta["versions"] == ["1"] and [t["name"] for t in meta["inputs"]] == ["a", "b"]
    assert client.get("/v2/models/heads/ready", headers=h).status_code == 200
    for path in ["/v2/models/heads/ready", "/v2/models/heads"]:
        r = client.get(path, headers=bob["headers"])
        assert r.status_code == 404 and set(r.json) == {"error"}
    tensors, _ = _v2_inputs(False)
    tensors[0]["shape"] = [2, 4]
    r = client.post("/v2/models/heads/infer", json={"inputs": tensors}, headers=h)
    assert r.status_code == 400 and "holds 8 values" in r.json["error"]
    r = client.post("/v2/models/heads/infer", json={"inputs": "x"}, headers=h)
    assert r.status_code == 400 and set(r.json) == {"error"}


def _predicts(client: FlaskClient) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    line = next(
        x for x in text.splitlines() if x.startswith("trainq_predict_latency_seconds_count")
    )
    return float(line.split()[-1])


def test_the_protocols_predicts_count_in_the_predict_latency(
    client: FlaskClient, heads: str, alice: dict[str, Any]
) -> None:
    before = _predicts(client)
    tensors, _ = _v2_inputs(False)
    h = alice["headers"]
    assert (
        client.post("/v1/models/heads:predict", json={"instances": _rows()}, headers=h).status_code
        == 200
    )
    assert (
        client.post("/v2/models/heads/infer", json={"inputs": tensors}, headers=h).status_code
        == 200
    )
    assert client.post("/v2/models/heads/infer", json={"inputs": []}, headers=h).status_code == 400
    assert _predicts(client) - before == 2  # the successful ones


def test_a_moved_alias_is_seen_and_a_revoked_token_refused(
    client: FlaskClient, heads: str, settings: Settings, alice: dict[str, Any]
) -> None:
    import time

    from shared.auth import revoke_token

    with session_scope(settings.database_url) as s:
        owner = s.get(User, alice["id"])
        service.register(s, owner, "heads", heads)  # version 2, of the same job
        service.set_alias(s, owner, "heads", "champion", 1)
    url = "/v1/models/heads/labels/champion"

    def version() -> str:
        r = client.get(url, headers=alice["headers"])
        assert r.status_code == 200, r.text
        return str(r.json["model_version_status"][0]["version"])

    assert version() == "1" and version() == "1"  # the second from memory
    with session_scope(settings.database_url) as s:
        service.set_alias(s, s.get(User, alice["id"]), "heads", "champion", 2)
    time.sleep(0.3)
    assert version() == "2"
    with session_scope(settings.database_url) as s:
        revoke_token(s, alice["token"])
    r = client.get(url, headers=alice["headers"])
    assert r.status_code == 401 and set(r.json) == {"error"}
