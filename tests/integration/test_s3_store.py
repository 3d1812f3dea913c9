"""The whole service on an S3 store (moto's server): the API and the worker each with local
folders of their own that end up holding only caches; what a job keeps is in the bucket."""

from __future__ import annotations

import contextlib
import hashlib
import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from shared.models import JobStatus
from tests.chaos.conftest import Stack
from tests.s3 import CREDENTIALS, MotoServer, moto_server
from tests.specs import quickstart
from tests.support import wait_until

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
BUCKET = "trainq-e2e"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[MotoServer]:
    with moto_server(tmp_path) as server:
        server.make_bucket(BUCKET)
        yield server


@pytest.fixture
def stack(tmp_path: Path, moto: MotoServer) -> Iterator[Stack]:
    stack = Stack(tmp_path)
    stack.env.update(CREDENTIALS, TRAINQ_STORAGE_URL=f"s3://{BUCKET}/trainq",
                     TRAINQ_S3_ENDPOINT_URL=moto.endpoint)  # fmt: skip
    try:
        yield stack
    finally:
        stack.stop()


def _host(stack: Stack, name: str) -> Path:
    """Point the next process started at local folders of its own, as on another machine."""
    var = stack.var_dir / name
    var.mkdir()
    stack.env.update(TRAINQ_VAR_DIR=str(var), TRAINQ_ARTIFACTS=str(var / "artifacts"),
                     TRAINQ_DATASETS_DIR=str(var / "datasets"))  # fmt: skip
    return var


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _sample() -> bytes:
    with np.load(ROOT / "shared" / "datasets" / "data" / "mnist_sample.npz") as data:
        arrays = {"x_train": data["x_train"][:2000], "y_train": data["y_train"][:2000],
                  "x_test": data["x_test"][:500], "y_test": data["y_test"][:500]}  # fmt: skip
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def test_a_dataset_trains_predicts_and_downloads_through_the_bucket(
    stack: Stack, moto: MotoServer
) -> None:
    fs = moto.fs()
    api = _host(stack, "api")
    stack.start_web()
    box = _host(stack, "box")
    stack.start_worker()

    content = _sample()
    r = requests.post(f"{stack.url}/api/v1/datasets", headers=stack.headers, timeout=60,
                      files={"file": ("mnist.npz", content)}, data={"name": "mnist"})  # fmt: skip
    assert r.status_code == 201, r.text
    dataset = r.json()
    assert fs.cat(f"{BUCKET}/trainq/datasets/{dataset['id']}.npz") == content

    spec = quickstart(epochs=2)
    spec["dataset"] = {"id": dataset["id"], "scale": 255.0}
    job_id = stack.submit(spec)
    seen: set[str] = set()
    done = threading.Event()

    def watch_bucket() -> None:  # what the worker puts in the bucket while the job trains
        while not done.is_set():
            with contextlib.suppress(Exception):  # a listing while an object is put
                seen.update(fs.find(f"{BUCKET}/trainq/artifacts/{job_id}"))
            done.wait(0.05)

    watcher = threading.Thread(target=watch_bucket, daemon=True)
    watcher.start()
    job = stack.wait_finished(job_id)
    done.set()
    watcher.join()
    assert job.status == JobStatus.succeeded, job.error
    assert [e.epoch for e in job.epochs] == [1, 2]
    prefix = f"{BUCKET}/trainq/artifacts/{job_id}"
    assert f"{prefix}/checkpoint/checkpoint.json" in seen, sorted(seen)
    assert any(k.startswith(f"{prefix}/checkpoint/epoch-") for k in seen), sorted(seen)

    stored = fs.find(f"{BUCKET}/trainq")
    assert f"{BUCKET}/trainq/datasets/{dataset['id']}.npz" in stored
    assert f"{prefix}/model.keras" in stored and f"{prefix}/model.h5" in stored
    assert any(k.startswith(f"{prefix}/tensorboard/train/") for k in stored), stored
    assert any(k.startswith(f"{prefix}/tensorboard/validation/") for k in stored), stored
    # Its worker removes the checkpoint just after the job ends.
    wait_until(lambda: not fs.find(f"{prefix}/checkpoint"), 30, "the stored checkpoint to go")
    artifacts = {a.format: a for a in job.artifacts}
    assert artifacts["keras"].path == f"{job_id}/model.keras"  # the Artifact's path is its key
    assert hashlib.sha256(fs.cat(f"{prefix}/model.keras")).hexdigest() == artifacts["keras"].sha256

    image = np.load(io.BytesIO(content))["x_test"][:2].tolist()
    r = requests.post(f"{stack.url}/api/v1/jobs/{job_id}/predict", headers=stack.headers,
                      json={"instances": image}, timeout=120)  # fmt: skip
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == 2
    r = requests.get(f"{stack.url}/api/v1/jobs/{job_id}/model", headers=stack.headers, timeout=60)
    assert (
        r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == artifacts["keras"].sha256
    )
    r = requests.get(f"{stack.url}/api/v1/jobs/{job_id}/tensorboard", headers=stack.headers,
                     timeout=60)  # fmt: skip
    assert r.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as tar:
        names = tar.getnames()
    assert any(n.startswith(f"trainq-{job_id}/train/") for n in names), names

    # Each host's folders hold only its caches: the API's model, the worker's dataset.
    keras_sha, data_sha = artifacts["keras"].sha256, dataset["sha256"]
    assert _files(api) == [f"cache/models/{keras_sha}.keras"]
    assert _files(box) == [f"cache/datasets/{data_sha}.npz"], _files(box)
