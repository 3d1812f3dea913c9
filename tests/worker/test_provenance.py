"""What a job trained with, recorded by its worker and shown by the API, and a rerun's spec
(real Keras, in this process; the end-to-end rerun is in tests/integration/test_rerun.py)."""

from __future__ import annotations

import hashlib
import io
import platform
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from shared import artifacts
from shared.auth import create_user, issue_token
from shared.commands.database import migrate
from shared.datasets.builtin import SAMPLE_FILE
from shared.db import session_scope
from shared.jobs.provenance import canonical_sha256, seed_of
from shared.models import Job
from shared.settings import Settings
from shared.spec.job import JobSpec
from tests.specs import quickstart
from tests.web.test_isolation import _npz  # a small .npz upload of 8 digits
from web import create_app

pytestmark = pytest.mark.timeout(300)


@dataclass
class Trained:
    """A service in this process, alice's headers, and her jobs trained by run_job."""

    client: FlaskClient
    settings: Settings
    alice: dict[str, str]
    npz: bytes

    def submit(self, spec: dict[str, Any]) -> str:
        r = self.client.post("/api/v1/jobs", json=spec, headers=self.alice)
        assert r.status_code == 202, r.get_data(as_text=True)
        return str(r.get_json()["id"])

    def train(self, spec: dict[str, Any]) -> dict[str, Any]:
        from worker.training import run_job

        job_id = self.submit(spec)
        run_job(self.settings, job_id)
        return self.get(job_id)

    def get(self, job_id: str) -> dict[str, Any]:
        r = self.client.get(f"/api/v1/jobs/{job_id}", headers=self.alice)
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.get_json()

    def upload(self) -> str:
        r = self.client.post("/api/v1/datasets", data={"file": (io.BytesIO(self.npz), "d.npz")},
                             headers=self.alice)  # fmt: skip
        assert r.status_code == 201, r.get_data(as_text=True)
        return str(r.get_json()["id"])

    def rerun(self, job_id: str) -> Any:
        return self.client.post(f"/api/v1/jobs/{job_id}/rerun", headers=self.alice)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Trained]:
    tmp = tmp_path_factory.mktemp("provenance")
    url = f"sqlite:///{tmp / 'trainq.db'}"
    migrate(url)
    settings = Settings(var_dir=tmp, database_url=url, redis_url=redis_url,
                        artifacts=tmp / "artifacts")  # fmt: skip
    with session_scope(url) as s:
        token = issue_token(s, create_user(s, "alice"))
    yield Trained(create_app(settings).test_client(), settings,
                  {"Authorization": f"Bearer {token}"}, _npz())  # fmt: skip


def _unseeded(**fit: Any) -> dict[str, Any]:
    spec = quickstart(**fit)
    del spec["seed"]
    return spec


def test_a_job_records_what_it_trained_with(trained: Trained) -> None:
    import keras
    import tensorflow as tf

    spec = _unseeded(epochs=1)
    job = trained.train(spec)
    assert job["status"] == "succeeded", job
    ran = job["provenance"]
    # No seed in the spec: the worker picked one, and the spec it hashed holds it.
    assert ran["seed_from"] == "worker" and 0 <= ran["seed"] < 2**31
    with session_scope(trained.settings.database_url) as s:
        row = s.get(Job, job["id"])
        assert row is not None
        stored, worker = row.spec, row.worker
    assert "seed" not in spec and stored["seed"] is None  # the submitted spec is as it was sent
    assert ran["spec_sha256"] == canonical_sha256(stored | {"seed": ran["seed"]})
    assert ran["dataset"] == {"name": "mnist-sample", "id": None,
                              "sha256": artifacts.sha256_of(SAMPLE_FILE)}  # fmt: skip
    assert ran["validation_dataset"] is None
    assert ran["versions"] == {
        "python": platform.python_version(), "tensorflow": tf.__version__,
        "keras": keras.__version__, "numpy": np.__version__, "trainq": "0.1.0",
    }  # fmt: skip
    assert set(ran["threads"]) == {"intra_op", "inter_op"}
    assert ran["host"] == socket.gethostname() and ran["worker"] == worker
    assert ran["attempt"] == 1
    started, finished = (datetime.fromisoformat(ran[k]) for k in ("started_at", "finished_at"))
    assert started <= finished and ran["finished_at"] == job["finished_at"]
    # A job its worker has not started has nothing recorded, and nothing to run again.
    queued = trained.submit(spec)
    assert trained.get(queued)["provenance"] is None
    r = trained.rerun(queued)
    assert r.status_code == 409 and "never started training" in r.get_json()["error"]["message"]


def test_a_resumed_job_keeps_the_seed_its_first_attempt_picked() -> None:
    spec = JobSpec.model_validate(_unseeded(epochs=1))
    assert seed_of(spec, {"seed": 1234}) == (1234, "worker")
    assert seed_of(spec.model_copy(update={"seed": 7}), {"seed": 1234}) == (7, "spec")
    picked = {seed_of(spec, None)[0] for _ in range(5)}
    assert len(picked) > 1  # a fresh pick each time there is none


def test_a_rerun_finds_its_upload_by_hash_or_says_it_is_gone(trained: Trained) -> None:
    spec = _unseeded(epochs=1, batch_size=16)
    spec["dataset"] = {"id": trained.upload(), "scale": 255.0}
    job = trained.train(spec)
    assert job["status"] == "succeeded", job
    ran = job["provenance"]
    assert ran["dataset"]["id"] == spec["dataset"]["id"]
    assert ran["dataset"]["sha256"] == hashlib.sha256(trained.npz).hexdigest()
    r = trained.rerun(job["id"])
    assert r.status_code == 202, r.get_data(as_text=True)
    again = trained.get(r.get_json()["id"])
    assert again["spec"]["seed"] == ran["seed"]
    assert again["spec"]["dataset"]["id"] == spec["dataset"]["id"]  # still there: the same one
    deleted = trained.client.delete(f"/api/v1/datasets/{spec['dataset']['id']}",
                                    headers=trained.alice)  # fmt: skip
    assert deleted.status_code == 409  # the rerun, queued, reads it: cancel it first
    trained.client.post(f"/api/v1/jobs/{again['id']}/cancel", headers=trained.alice)
    deleted = trained.client.delete(f"/api/v1/datasets/{spec['dataset']['id']}",
                                    headers=trained.alice)  # fmt: skip
    assert deleted.status_code == 204, deleted.get_data(as_text=True)
    r = trained.rerun(job["id"])
    error = r.get_json()["error"]
    assert r.status_code == 409 and error["code"] == "conflict"
    assert "is gone: upload the same file again" in error["message"]
    assert error["details"] == {"field": "dataset", "sha256": ran["dataset"]["sha256"]}
    uploaded_again = trained.upload()  # the same bytes: a new id, the same hash
    r = trained.rerun(job["id"])
    assert r.status_code == 202, r.get_data(as_text=True)
    assert trained.get(r.get_json()["id"])["spec"]["dataset"]["id"] == uploaded_again
