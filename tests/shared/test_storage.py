"""The store (shared/storage.py) on a local folder and on a real S3 server (moto's), and what
the service does when the store cannot be reached."""

from __future__ import annotations

import hashlib
import io
import logging
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from shared import storage
from shared.caches import Cache
from shared.db import sessions, transaction
from shared.models import Dataset, Job
from shared.settings import Settings
from shared.storage import Store, StoreUnavailable
from tests.s3 import MotoServer, moto_server
from tests.specs import quickstart
from web import create_app

BUCKET = "trainq-test"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One S3 server for the module's tests, with a bucket."""
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        server.make_bucket(BUCKET)
        yield server


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """An empty store: a local folder, or a fresh prefix of the S3 server's bucket."""
    if request.param == "local":
        return Store(str(tmp_path / "store"))
    server: MotoServer = request.getfixturevalue("moto")
    return Store(f"s3://{BUCKET}/{uuid.uuid4().hex}", endpoint_url=server.endpoint, wait=5)


def test_put_get_open_exists_list_delete(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "model.keras"
    src.write_bytes(b"weights" * 1000)
    store.put(src, "job1/model.keras", keep=True)
    assert src.exists()  # kept
    store.put_bytes("job1/tensorboard/train/events.1", b"event")
    store.put_bytes("job2/model.keras", b"other")
    assert store.exists("job1/model.keras") and not store.exists("job1/model.h5")
    assert store.list("job1") == ["job1/model.keras", "job1/tensorboard/train/events.1"]
    assert store.list("nothing-here") == []
    store.get("job1/model.keras", tmp_path / "copy" / "m.keras")
    assert (tmp_path / "copy" / "m.keras").read_bytes() == b"weights" * 1000
    with store.open("job1/model.keras") as f:
        assert f.read(7) == b"weights"
    assert store.read_bytes("job2/model.keras") == b"other"
    with pytest.raises(FileNotFoundError):
        store.read_bytes("job1/model.h5")
    with pytest.raises(FileNotFoundError):
        store.get("job1/model.h5", tmp_path / "none")
    assert not (tmp_path / "none").exists()
    store.delete("job2/model.keras")
    store.delete("job2/model.keras")  # already gone: no error
    assert not store.exists("job2/model.keras")
    store.delete_prefix("job1")
    assert store.list("job1") == []
    # A put moves its file by default: nothing is left behind where it was written.
    store.put(src, "job3/model.keras")
    assert not src.exists() and store.exists("job3/model.keras")


def test_keys_stay_inside_the_store(store: Store) -> None:
    for bad in ("", "../escape", "a/../../b"):
        with pytest.raises(ValueError):
            store.put_bytes(bad, b"x")


def test_a_put_replaces_an_object_whole_and_leaves_no_temporary(store: Store) -> None:
    store.put_bytes("d/1.npz", b"a" * 100)
    store.put_bytes("d/1.npz", b"b" * 50)
    assert store.read_bytes("d/1.npz") == b"b" * 50
    assert store.list("d") == ["d/1.npz"]
    if store.local is not None:  # nothing aside either, once the rename is done
        assert sorted(p.name for p in (store.local / "d").iterdir()) == ["1.npz"]


def test_sync_up_puts_only_what_changed(store: Store, tmp_path: Path) -> None:
    logs = tmp_path / "tb"
    (logs / "train").mkdir(parents=True)
    (logs / "train" / "events").write_bytes(b"1")
    seen: dict[str, tuple[int, int]] = {}
    assert store.sync_up(logs, "j/tensorboard", seen) == 1
    assert store.sync_up(logs, "j/tensorboard", seen) == 0
    (logs / "train" / "events").write_bytes(b"12")
    (logs / "validation").mkdir()
    (logs / "validation" / "events").write_bytes(b"v")
    assert store.sync_up(logs, "j/tensorboard", seen) == 2
    assert store.read_bytes("j/tensorboard/train/events") == b"12"


def test_the_cache_fetches_once_per_content_and_stays_bounded(
    moto: MotoServer, tmp_path: Path
) -> None:
    store = Store(f"s3://{BUCKET}/{uuid.uuid4().hex}", endpoint_url=moto.endpoint, wait=5)
    contents = {f"{i}/model.keras": bytes([i]) * 4000 for i in range(3)}
    for key, data in contents.items():
        store.put_bytes(key, data)
    cache = Cache(tmp_path / "cache", max_bytes=9000)
    sha = {k: hashlib.sha256(v).hexdigest() for k, v in contents.items()}
    first = cache.fetch(store, "0/model.keras", sha["0/model.keras"])
    assert first.read_bytes() == contents["0/model.keras"] and first.suffix == ".keras"
    store.delete("0/model.keras")  # a second read never goes to the store
    assert cache.fetch(store, "0/model.keras", sha["0/model.keras"]) == first
    cache.fetch(store, "1/model.keras", sha["1/model.keras"])
    time.sleep(0.01)
    cache.fetch(store, "2/model.keras", sha["2/model.keras"])  # 12000 bytes: the oldest goes
    assert sorted(p.name for p in cache.folder.iterdir()) == sorted(
        f"{sha[k]}.keras" for k in ("1/model.keras", "2/model.keras")
    )
    with pytest.raises(StoreUnavailable, match="SHA-256"):  # the store's copy is not the one
        cache.fetch(store, "1/model.keras", "0" * 64)
    assert not any(p.name.startswith(".tmp-") for p in cache.folder.iterdir())


def test_a_local_store_needs_no_cache(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "artifacts"))
    store.put_bytes("j/model.keras", b"m")
    path = Cache(tmp_path / "cache", 1).fetch(store, "j/model.keras", "whatever")
    assert path == tmp_path / "artifacts" / "j" / "model.keras"
    assert not (tmp_path / "cache").exists()


def test_default_settings_keep_the_local_folders(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, artifacts=tmp_path / "a", datasets_dir=tmp_path / "d")
    assert storage.artifacts(settings).local == tmp_path / "a"
    assert storage.datasets(settings).local == tmp_path / "d"
    assert not storage.remote(settings)
    s3 = Settings(var_dir=tmp_path, storage_url="s3://bucket/some/prefix/")
    assert storage.remote(s3)
    assert storage.artifacts(s3).root == "bucket/some/prefix/artifacts"
    assert storage.datasets(s3).root == "bucket/some/prefix/datasets"


# The store away: a server of the test's own, stopped.


@pytest.fixture
def lost(tmp_path: Path) -> Iterator[MotoServer]:
    with moto_server(tmp_path) as server:
        server.make_bucket(BUCKET)
        yield server


def test_a_put_to_an_unreachable_store_retries_then_is_unavailable(
    lost: MotoServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(f"s3://{BUCKET}/p", endpoint_url=lost.endpoint, wait=2)
    store.put_bytes("a", b"1")
    lost.stop()
    src = tmp_path / "weights.h5"
    src.write_bytes(b"w")
    started = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="shared.storage"),
        pytest.raises(StoreUnavailable) as raised,
    ):
        store.put(src, "b")
    took = time.monotonic() - started
    assert 1.0 < took < 10, took  # tried for the bound, not for ever
    assert any("trying again" in r.message for r in caplog.records)
    err = raised.value
    assert (err.status, err.code, err.retry_after) == (503, "unavailable", 5)
    assert "cannot be reached" in err.message
    assert err.details["store"] == f"s3://{BUCKET}/p"
    assert src.exists()  # not moved away: the caller still has it
    for call in (lambda: store.exists("a"), lambda: store.list(""), lambda: store.delete("a")):
        with pytest.raises(StoreUnavailable):
            call()


def _npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x_train=np.zeros((8, 3), "float32"), y_train=np.zeros(8, "int64"))
    return buffer.getvalue()


def test_uploads_go_to_the_store_and_none_is_half_kept_when_it_is_away(
    lost: MotoServer, tmp_path: Path, sqlite_url: str, redis_url: str, alice: dict[str, Any]
) -> None:
    settings = Settings(
        var_dir=tmp_path, database_url=sqlite_url, redis_url=redis_url,
        storage_url=f"s3://{BUCKET}/svc", s3_endpoint_url=lost.endpoint,
    )  # fmt: skip
    client = create_app(settings).test_client()
    headers = alice["headers"]
    fs = lost.fs()

    def post() -> Any:
        return client.post("/api/v1/datasets", headers=headers,
                           data={"file": (io.BytesIO(_npz()), "d.npz"), "name": "d"},
                           content_type="multipart/form-data")  # fmt: skip

    r = post()
    assert r.status_code == 201, r.get_data(as_text=True)
    kept = r.get_json()["id"]
    assert fs.cat(f"{BUCKET}/svc/datasets/{kept}.npz") == _npz()
    assert not settings.datasets_dir.exists()  # nothing on the API host's disk
    buffer = io.BytesIO()
    np.savez(buffer, x_train=np.array([{"a": 1}] * 8, dtype=object), y_train=np.zeros(8))
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x_train.npy", b"\0" * (settings.max_dataset_bytes + 1))
    for bad in (buffer.getvalue(), bomb.getvalue(), _npz()[:-100]):  # pickled, bomb, truncated
        r = client.post("/api/v1/datasets", headers=headers, content_type="multipart/form-data",
                        data={"file": (io.BytesIO(bad), "d.npz"), "name": "bad"})  # fmt: skip
        assert r.status_code == 422, r.get_data(as_text=True)
    assert fs.find(f"{BUCKET}/svc/datasets") == [f"{BUCKET}/svc/datasets/{kept}.npz"]

    lost.stop()
    started = time.monotonic()
    r = post()
    assert time.monotonic() - started < 15
    assert r.status_code == 503, r.get_data(as_text=True)
    error = r.get_json()["error"]
    assert error["code"] == "unavailable" and "store" in error["message"]
    assert "cannot be reached" in error["message"]
    assert r.headers["Retry-After"] == "5"
    r = client.delete(f"/api/v1/datasets/{kept}", headers=headers)
    assert r.status_code == 503  # the row stays with its object
    spec = quickstart(epochs=1)
    spec["dataset"] = {"id": kept}
    r = client.post("/api/v1/jobs", json=spec, headers=headers)  # it would fail in its worker
    assert r.status_code == 503, r.get_data(as_text=True)
    assert "store" in r.get_json()["error"]["message"]

    with transaction(sessions(sqlite_url)) as s:  # no row without its object, no job
        assert s.scalars(select(Dataset.id)).all() == [kept]
        assert s.scalars(select(Job.id)).all() == []


def test_a_bucket_that_does_not_exist_is_said_so(moto: MotoServer) -> None:
    missing = Store("s3://no-such-bucket/p", endpoint_url=moto.endpoint, wait=1)
    with pytest.raises(StoreUnavailable, match="no such bucket: create it"):
        missing.put_bytes("a", b"1")
