"""Uploaded datasets over HTTP: checked without pickle, owned by the uploader, kept while in use."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from shared.settings import Settings
from tests.web.test_api import assert_error
from web import create_app

DATASETS = "/api/v1/datasets"
User = dict[str, Any]


def npz(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def good(n: int = 20) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"x_train": rng.normal(size=(n, 5)).astype("float32"),
            "y_train": rng.integers(0, 3, n), "x_test": np.zeros((4, 5)),
            "y_test": np.zeros(4, "int64")}  # fmt: skip


def upload(client: FlaskClient, user: User, content: bytes, name: str = "toy") -> Any:
    return client.post(
        DATASETS, data={"file": (io.BytesIO(content), "data.npz"), "name": name},
        headers=user["headers"], content_type="multipart/form-data",
    )  # fmt: skip


def stored(settings: Settings) -> list[str]:
    folder = settings.datasets_dir
    return sorted(os.listdir(folder)) if folder.exists() else []


def test_upload_records_shapes_dtypes_and_hash(
    client: FlaskClient, alice: User, settings: Settings
) -> None:
    content = npz(**good())
    response = upload(client, alice, content)
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert response.headers["Location"] == f"{DATASETS}/{body['id']}"
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert body["size_bytes"] == len(content)
    assert (body["n_train"], body["n_test"]) == (20, 4)
    assert body["arrays"]["x_train"] == {"shape": [20, 5], "dtype": "float32"}
    assert body["arrays"]["y_train"] == {"shape": [20], "dtype": "int64"}
    assert stored(settings) == [f"{body['id']}.npz"]
    assert client.get(f"{DATASETS}/{body['id']}", headers=alice["headers"]).get_json() == body
    assert client.get(DATASETS, headers=alice["headers"]).get_json()["datasets"] == [body]


class _Payload:
    """Unpickling this creates a file."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.target,))


def test_pickled_npz_is_refused_and_never_unpickled(
    client: FlaskClient, alice: User, settings: Settings, tmp_path: Path
) -> None:
    target = tmp_path / "unpickled"
    hostile = np.array([_Payload(target)], dtype=object)
    content = npz(x_train=hostile, y_train=np.zeros(1))
    with np.load(io.BytesIO(content), allow_pickle=True) as data:
        data["x_train"]  # the payload is real: loading with pickle runs it
    assert target.exists()
    target.unlink()
    error = assert_error(upload(client, alice, content), 422, "invalid_input")
    assert error["details"]["field"] == "x_train" and "pickle" in error["message"]
    assert not target.exists()
    assert stored(settings) == [] and client.get(DATASETS, headers=alice["headers"]).get_json() == {
        "datasets": []
    }
    assert pickle.dumps(1)  # pickle itself is fine; trainq simply never unpickles uploads


@pytest.mark.parametrize(
    ("arrays", "field", "words"),
    [
        pytest.param({"x_train": np.zeros((3, 2))}, "y_train", "no y_train", id="missing-y"),
        pytest.param({**good(), "labels": np.zeros(3)}, "labels", "unexpected array",
                     id="wrong-name"),
        pytest.param({"x_train": np.zeros((3, 2)), "y_train": np.zeros(4)}, "x_train",
                     "different lengths", id="mismatched-lengths"),
        pytest.param({**good(), "sample_weight": np.ones(7)}, "x_train", "different lengths",
                     id="short-sample-weight"),
        pytest.param({"x_train": np.array([["a", "b"]]), "y_train": np.zeros(1)}, "x_train",
                     "only numbers", id="strings"),
        pytest.param({"x_train": np.array([[np.nan]]), "y_train": np.zeros(1)}, "x_train",
                     "NaN", id="nan"),
        pytest.param({"x_train": np.zeros((2, 2)), "y_train": np.zeros(2),
                      "x_test": np.zeros((1, 2))},
                     "x_test", "both x_test and y_test", id="test-without-labels"),
    ],
)  # fmt: skip
def test_bad_archives_are_refused(
    client: FlaskClient, alice: User, settings: Settings, arrays: Any, field: str, words: str
) -> None:
    error = assert_error(upload(client, alice, npz(**arrays)), 422, "invalid_input")
    assert error["details"]["field"] == field and words in error["message"], error
    assert stored(settings) == []


def test_not_an_npz(client: FlaskClient, alice: User) -> None:
    error = assert_error(upload(client, alice, b"just text"), 422, "invalid_input")
    assert "not an .npz" in error["message"]
    assert_error(client.post(DATASETS, headers=alice["headers"]), 400, "bad_request")


def test_over_the_size_limit(settings: Settings, alice: User) -> None:
    client = create_app(settings.model_copy(update={"max_dataset_bytes": 4096})).test_client()
    big = {"x_train": np.zeros((200, 5)), "y_train": np.zeros(200)}  # 9,600 bytes of arrays
    error = assert_error(upload(client, alice, npz(**big)), 422, "invalid_input")
    assert "at most 4096" in error["message"]
    assert stored(settings) == []
    compressed = io.BytesIO()
    np.savez_compressed(compressed, **big)  # small on the wire, too big once unpacked
    assert len(compressed.getvalue()) < 4096
    assert "uncompressed" in assert_error(upload(client, alice, compressed.getvalue()), 422,
                                          "invalid_input")["message"]  # fmt: skip


def test_another_users_dataset_is_not_found(client: FlaskClient, alice: User, bob: User) -> None:
    dataset_id = upload(client, alice, npz(**good())).get_json()["id"]
    for method in ("get", "delete"):
        response = getattr(client, method)(f"{DATASETS}/{dataset_id}", headers=bob["headers"])
        assert_error(response, 404, "not_found")
    assert client.get(DATASETS, headers=bob["headers"]).get_json() == {"datasets": []}
    spec = _spec(dataset_id)
    error = assert_error(client.post("/api/v1/jobs", json=spec, headers=bob["headers"]), 422,
                         "dataset_unavailable")  # fmt: skip
    assert error["details"]["field"] == "dataset.id"


def test_a_dataset_is_found_by_its_files_hash(client: FlaskClient, alice: User, bob: User) -> None:
    content = npz(**good())
    body = upload(client, alice, content).get_json()
    upload(client, alice, npz(**good(30)))
    digest = hashlib.sha256(content).hexdigest()
    found = client.get(f"{DATASETS}?sha256={digest}", headers=alice["headers"]).get_json()
    assert found == {"datasets": [body]}
    for user, sha256 in ((alice, "0" * 64), (bob, digest)):  # no such file; not bob's
        answer = client.get(f"{DATASETS}?sha256={sha256}", headers=user["headers"]).get_json()
        assert answer == {"datasets": []}
    for query in ("sha256=ABC", f"sha256={digest}&sha256={digest}", "name=toy"):
        error = assert_error(client.get(f"{DATASETS}?{query}", headers=alice["headers"]), 422,
                             "invalid_input")  # fmt: skip
        assert error["details"]["field"] in ("sha256", "name")


def _spec(dataset_id: str) -> dict[str, Any]:
    return {
        "dataset": {"id": dataset_id},
        "model": {"layers": [{"class_name": "Dense", "config": {"units": 3}}]},
        "compile": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy"},
    }


def test_delete_is_refused_while_a_job_uses_it(
    client: FlaskClient, alice: User, settings: Settings, sqlite_url: str
) -> None:
    from sqlalchemy import update

    from shared.db import session_scope
    from shared.models import Job, JobStatus

    dataset_id = upload(client, alice, npz(**good())).get_json()["id"]
    job = client.post("/api/v1/jobs", json=_spec(dataset_id), headers=alice["headers"])
    assert job.status_code == 202, job.get_data(as_text=True)
    for status in (JobStatus.queued, JobStatus.running):
        with session_scope(sqlite_url) as s:
            s.execute(update(Job).values(status=status))
        error = assert_error(client.delete(f"{DATASETS}/{dataset_id}", headers=alice["headers"]),
                             409, "conflict")  # fmt: skip
        assert error["details"]["jobs"] == [job.get_json()["id"]]
    with session_scope(sqlite_url) as s:
        s.execute(update(Job).values(status=JobStatus.succeeded))
    assert client.delete(f"{DATASETS}/{dataset_id}", headers=alice["headers"]).status_code == 204
    assert stored(settings) == []
    assert_error(client.get(f"{DATASETS}/{dataset_id}", headers=alice["headers"]), 404, "not_found")


def test_a_header_promising_a_huge_array_is_refused_unread(
    client: FlaskClient, alice: User, settings: Settings
) -> None:
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
    )
    content = io.BytesIO()
    with zipfile.ZipFile(content, "w") as archive:
        archive.writestr("x_train.npy", header.getvalue())  # a header, no data
        archive.writestr("y_train.npy", b"")
    error = assert_error(upload(client, alice, content.getvalue()), 422, "invalid_input")
    assert error["details"]["field"] == "x_train" and "at most" in error["message"]
    assert stored(settings) == []
