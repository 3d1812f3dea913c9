"""Through the running service, with clients no one here wrote: the ``kserve`` package's REST
client (Open Inference Protocol, v2) and curl sending TF Serving's documented requests get the
classes and logits the native predict gives, for a one-output and a two-output (Functional)
model trained an epoch on mnist-sample; another user's model is not found in either protocol."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
from typing import Any

import numpy as np
import pytest
import requests

from shared.db import session_scope
from shared.models import User
from shared.registry import service
from tests.live import Live
from tests.specs import quickstart
from tests.support import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
SAMPLE = ROOT / "shared" / "datasets" / "data" / "mnist_sample.npz"
MODELS = ("digits", "two-heads")  # one output; two outputs (a digit head and a regression head)


def _two_output_spec(dataset_id: str) -> dict[str, Any]:
    import keras

    image = keras.Input((28, 28), name="image")
    h = keras.layers.Dense(32, activation="relu")(keras.layers.Flatten()(image))
    model = keras.Model(image, [keras.layers.Dense(10, name="digit")(h),
                                keras.layers.Dense(1, name="ink")(h)])  # fmt: skip
    document = model.to_json()
    keras.backend.clear_session()
    return {
        "dataset": {"id": dataset_id, "scale": 255.0},
        "model": {"json": document},
        "compile": {
            "optimizer": "adam",
            "loss": {"digit": {"class_name": "SparseCategoricalCrossentropy",
                               "config": {"from_logits": True}}, "ink": "mse"},
        },
        "fit": {"epochs": 1, "batch_size": 64},
        "seed": 7,
    }  # fmt: skip


@pytest.fixture(scope="module")
def live(live_stacks: Any) -> Live:
    """The shared service, with alice's two models registered (version 1 each)."""
    live: Live = live_stacks.get("sqlite")
    with np.load(SAMPLE) as data:
        x, y = data["x_train"][:2000], data["y_train"][:2000]
    buffer = io.BytesIO()
    ink = (x.mean(axis=(1, 2)) / 255.0).astype("float32")  # a regression head's target
    np.savez(buffer, **{"x_train": x, "y_train.digit": y, "y_train.ink": ink})
    r = requests.post(f"{live.url}/api/v1/datasets", headers=live.alice,
                      files={"file": ("heads.npz", buffer.getvalue())})  # fmt: skip
    assert r.status_code == 201, r.text
    spec = quickstart(epochs=1, validation_split=0.0)
    jobs = [live.submit(spec)["id"], live.submit(_two_output_spec(r.json()["id"]))["id"]]
    token = live.alice["Authorization"].split()[1]
    for name, job_id in zip(MODELS, jobs, strict=True):
        job = live.wait(job_id)
        assert job["status"] == "succeeded", job.get("error")
        with session_scope(live.db_url) as s:
            owner = s.scalar(_owner_of(token))
            service.register(s, owner, name, job_id)
    live.service.jobs = dict(zip(MODELS, jobs, strict=True))  # type: ignore[attr-defined]
    return live


def _owner_of(token: str) -> Any:
    from sqlalchemy import select

    from shared.auth import hash_token
    from shared.models import ApiToken

    return select(User).join(ApiToken).where(ApiToken.token_hash == hash_token(token))


def _images(n: int = 4) -> np.ndarray:
    with np.load(SAMPLE) as data:
        return data["x_test"][:n].astype("float32")  # raw pixels: the job's scale is applied


def _native(live: Live, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Logits and classes of the first (or only) classifier head, by the native predict."""
    job_id = live.service.jobs[name]  # type: ignore[attr-defined]
    r = requests.post(f"{live.url}/api/v1/jobs/{job_id}/predict", headers=live.alice,
                      json={"instances": _images().tolist()})  # fmt: skip
    assert r.status_code == 200, r.text
    rows = [p["outputs"]["digit"] if "outputs" in p else p for p in r.json()["predictions"]]
    return np.array([p["logits"] for p in rows]), np.array([p["class"] for p in rows])


def _prefix(name: str) -> str:
    return "digit/" if name == "two-heads" else ""


@pytest.mark.parametrize("binary", [True, False])
def test_the_kserve_client_gets_the_native_classes_and_logits(live: Live, binary: bool) -> None:
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    async def call(name: str) -> Any:
        client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=60))
        try:
            assert await client.is_server_live(live.url)
            assert await client.is_server_ready(live.url)
            assert await client.is_model_ready(live.url, name, headers=live.alice)
            tensor = InferInput("input-0", [4, 28, 28], "FP32")
            tensor.set_data_from_numpy(_images(), binary_data=binary)
            request = InferRequest(model_name=name, infer_inputs=[tensor])
            # the client adds its binary headers to the dict it is given
            return await client.infer(live.url, request, model_name=name, headers=dict(live.alice))
        finally:
            await client.close()

    for name in MODELS:
        logits, classes = _native(live, name)
        answer = asyncio.run(call(name))
        outputs = {o.name: o.as_numpy() for o in answer.outputs}
        np.testing.assert_allclose(outputs[f"{_prefix(name)}logits"], logits, atol=1e-5)
        np.testing.assert_array_equal(outputs[f"{_prefix(name)}classes"], classes)
        assert answer.model_name == name
        if name == "two-heads":
            assert outputs["ink"].shape == (4, 1)


def _curl(live: Live, method: str, path: str, body: str | None = None) -> tuple[int, Any]:
    """curl as TF Serving's REST API page calls it (``curl -d '...' -X POST URL``: a form
    Content-Type), with the bearer token."""
    args = [
        "curl",
        "-s",
        "-w",
        "\n%{http_code}",
        "-H",
        f"Authorization: {live.alice['Authorization']}",
    ]
    if body is not None:
        args += ["-d", body]
    done = subprocess.run([*args, "-X", method, f"{live.url}{path}"], capture_output=True,
                          text=True, timeout=60, check=True)  # fmt: skip
    text, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(text)


def test_tf_serving_documented_requests_get_the_native_classes_and_logits(live: Live) -> None:
    images = json.dumps(_images().tolist())
    for name in MODELS:
        logits, classes = _native(live, name)
        p = _prefix(name)
        status, answer = _curl(
            live, "POST", f"/v1/models/{name}:predict", f'{{"instances": {images}}}'
        )
        assert status == 200, answer
        rows = answer["predictions"]
        np.testing.assert_allclose([r[f"{p}logits"] for r in rows], logits, atol=1e-5)
        assert [r[f"{p}classes"] for r in rows] == classes.tolist()
        body = f'{{"signature_name": "serving_default", "inputs": {images}}}'
        status, answer = _curl(live, "POST", f"/v1/models/{name}/versions/1:predict", body)
        assert status == 200, answer
        np.testing.assert_allclose(answer["outputs"][f"{p}logits"], logits, atol=1e-5)
        ok = {"error_code": "OK", "error_message": ""}
        assert _curl(live, "GET", f"/v1/models/{name}")[1] == {
            "model_version_status": [{"version": "1", "state": "AVAILABLE", "status": ok}]
        }
        status, meta = _curl(live, "GET", f"/v1/models/{name}/metadata")
        assert meta["model_spec"] == {"name": name, "signature_name": "", "version": "1"}
    status, answer = _curl(live, "POST", "/v1/models/half:predict", '{"instances": [1.0,5.0]}')
    assert status == 404 and set(answer) == {"error"}  # the page's last example


def test_another_users_model_is_not_found_in_either_protocol(live: Live) -> None:
    body = {"instances": _images(1).tolist()}
    r = requests.post(f"{live.url}/v1/models/digits:predict", json=body, headers=live.bob)
    assert r.status_code == 404 and set(r.json()) == {"error"}
    tensor = {"name": "x", "shape": [1, 28, 28], "datatype": "FP32",
              "data": _images(1).reshape(-1).tolist()}  # fmt: skip
    r = requests.post(f"{live.url}/v2/models/digits/infer", json={"inputs": [tensor]},
                      headers=live.bob)  # fmt: skip
    assert r.status_code == 404 and set(r.json()) == {"error"}
    r = requests.post(f"{live.url}/v2/models/digits/infer", json={"inputs": [tensor]},
                      headers=live.alice)  # fmt: skip
    assert r.status_code == 200 and r.json()["model_version"] == "1"
