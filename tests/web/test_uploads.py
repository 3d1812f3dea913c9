"""Uploads at real sizes: streamed to disk and checked as they are read, refused while they
stream with nothing kept; uploads in parts, resumed after a dropped connection."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from shared.settings import Settings
from tests.web.test_api import assert_error
from tests.web.test_datasets import DATASETS, good, npz, stored, upload
from web import create_app

UPLOADS = "/api/v1/uploads"
User = dict[str, Any]


def left_over(settings: Settings) -> list[Path]:
    """Every file an upload may leave behind: spooled bodies, parts, stored datasets."""
    folders = (settings.var_dir / "uploads", settings.datasets_dir)
    return sorted(p for f in folders if f.exists() for p in f.rglob("*") if p.is_file())


def nothing_kept(client: FlaskClient, user: User, settings: Settings) -> None:
    assert left_over(settings) == [] and stored(settings) == []
    assert client.get(DATASETS, headers=user["headers"]).get_json() == {"datasets": []}


def _lying_bomb(inflated: int) -> bytes:
    """A deflated member whose zip headers say it holds 128 bytes; it inflates to ``inflated``."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (16,)}
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x_train.npy", header.getvalue() + b"\0" * inflated)
        z.writestr("y_train.npy", npz(y=np.zeros(16))[0:0])
    content = bytearray(buffer.getvalue())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local, central
        at = content.find(signature)
        struct.pack_into("<I", content, at + offset, 128)
    return bytes(content)


def test_an_upload_is_streamed_to_disk_and_checked_without_loading_its_arrays(
    client: FlaskClient, alice: User, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an upload was loaded whole")

    monkeypatch.setattr(np, "load", refuse)
    content = npz(**good(5000))
    response = upload(client, alice, content)
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert body["arrays"]["x_train"] == {"shape": [5000, 5], "dtype": "float32"}
    assert stored(settings) == [f"{body['id']}.npz"]
    assert (settings.datasets_dir / f"{body['id']}.npz").read_bytes() == content
    assert [p for p in left_over(settings) if "uploads" in p.parts] == []  # no spool left


def test_an_upload_over_the_limit_is_refused_before_it_is_read(
    settings: Settings, alice: User
) -> None:
    client = create_app(settings.model_copy(update={"max_dataset_bytes": 4096})).test_client()
    error = assert_error(upload(client, alice, b"\0" * (2 * 1024 * 1024)), 413,
                         "payload_too_large")  # fmt: skip
    assert error["message"]
    nothing_kept(client, alice, settings)


@pytest.mark.parametrize("kind", ["bomb", "lying-bomb", "pickled", "truncated", "nan-late"])
def test_hostile_uploads_are_refused_and_nothing_is_kept(
    settings: Settings, alice: User, kind: str
) -> None:
    limit = 1024 * 1024
    client = create_app(settings.model_copy(update={"max_dataset_bytes": limit})).test_client()
    if kind == "bomb":  # a few KiB on the wire, 8 MiB inflated
        buffer = io.BytesIO()
        np.savez_compressed(buffer, x_train=np.zeros((1024 * 1024, 1)), y_train=np.zeros(1))
        content = buffer.getvalue()
    elif kind == "lying-bomb":  # its headers say 128 bytes: never believed
        content = _lying_bomb(8 * 1024 * 1024)
        assert zlib.decompress  # deflated, so small on the wire
    elif kind == "pickled":
        content = npz(x_train=np.array([{"a": 1}] * 8, dtype=object), y_train=np.zeros(8))
    elif kind == "truncated":
        content = npz(**good(2000))[:-5000]
    else:  # a NaN in the last chunk of a big array: found while streaming
        x = np.zeros((100_000, 1), "float32")
        x[-1] = np.nan
        content = npz(x_train=x, y_train=np.zeros(100_000))
    assert len(content) < limit or kind == "nan-late"
    if kind == "nan-late":
        client = create_app(settings.model_copy(update={"max_dataset_bytes": 4 * limit}))
        client = client.test_client()
    error = assert_error(upload(client, alice, content), 422, "invalid_input")
    assert error["message"], error
    nothing_kept(client, alice, settings)


def _start(client: FlaskClient, user: User, size: int, name: str = "big") -> dict[str, Any]:
    r = client.post(UPLOADS, json={"size": size, "name": name}, headers=user["headers"])
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.headers["Location"] == f"{UPLOADS}/{r.get_json()['id']}"
    return dict(r.get_json())


def _put(client: FlaskClient, user: User, upload_id: str, n: int, data: bytes) -> Any:
    return client.put(f"{UPLOADS}/{upload_id}/parts/{n}", data=data, headers=user["headers"],
                      content_type="application/octet-stream")  # fmt: skip


def test_an_upload_in_parts_resumes_after_a_dropped_connection(
    client: FlaskClient, alice: User, bob: User, settings: Settings
) -> None:
    content = npz(**good(3000))
    size, part = len(content), len(content) // 3 + 1
    chunks = [content[i : i + part] for i in range(0, size, part)]
    upload_id = _start(client, alice, size)["id"]
    assert _put(client, alice, upload_id, 1, chunks[0]).get_json() == {
        "n": 1,
        "size": len(chunks[0]),
        "sha256": hashlib.sha256(chunks[0]).hexdigest(),
    }
    dropped = client.put(
        f"{UPLOADS}/{upload_id}/parts/2", headers=alice["headers"],
        input_stream=io.BytesIO(chunks[1][: len(chunks[1]) // 2]),  # the connection drops
        environ_overrides={"CONTENT_LENGTH": str(len(chunks[1]))},  # mid-way through
    )  # fmt: skip
    assert dropped.status_code == 400, dropped.get_data(as_text=True)
    status = client.get(f"{UPLOADS}/{upload_id}", headers=alice["headers"]).get_json()
    assert [p["n"] for p in status["parts"]] == [1] and status["received_bytes"] == len(chunks[0])
    assert status["size"] == size and status["name"] == "big"
    assert len(left_over(settings)) == 3  # upload.json, part 1 and its record: no half part
    complete = f"{UPLOADS}/{upload_id}/complete"
    early = assert_error(client.post(complete, headers=alice["headers"]), 409, "conflict")
    assert early["details"]["received_bytes"] == len(chunks[0])
    assert_error(client.get(f"{UPLOADS}/{upload_id}", headers=bob["headers"]), 404, "not_found")
    assert_error(_put(client, bob, upload_id, 2, chunks[1]), 404, "not_found")
    for n in (3, 2):  # what did not arrive, in any order
        assert _put(client, alice, upload_id, n, chunks[n - 1]).status_code == 200
    sha256 = hashlib.sha256(content).hexdigest()
    r = client.post(complete, json={"sha256": sha256}, headers=alice["headers"])
    assert r.status_code == 201, r.get_data(as_text=True)
    body = r.get_json()
    assert body["sha256"] == sha256 and body["size_bytes"] == size and body["name"] == "big"
    assert (settings.datasets_dir / f"{body['id']}.npz").read_bytes() == content
    assert [p for p in left_over(settings) if "uploads" in p.parts] == []
    assert_error(client.get(f"{UPLOADS}/{upload_id}", headers=alice["headers"]), 404, "not_found")


def test_a_refused_upload_in_parts_keeps_nothing(
    settings: Settings, client: FlaskClient, alice: User
) -> None:
    content = npz(x_train=np.array([{"a": 1}] * 8, dtype=object), y_train=np.zeros(8))
    upload_id = _start(client, alice, len(content))["id"]
    assert _put(client, alice, upload_id, 1, content).status_code == 200
    r = client.post(f"{UPLOADS}/{upload_id}/complete", headers=alice["headers"])
    assert "pickle" in assert_error(r, 422, "invalid_input")["message"]
    nothing_kept(client, alice, settings)
    good_one = npz(**good())
    upload_id = _start(client, alice, len(good_one))["id"]
    assert _put(client, alice, upload_id, 1, good_one).status_code == 200
    wrong = client.post(f"{UPLOADS}/{upload_id}/complete", json={"sha256": "0" * 64},
                        headers=alice["headers"])  # fmt: skip
    assert assert_error(wrong, 422, "invalid_input")["details"]["field"] == "sha256"
    nothing_kept(client, alice, settings)


def test_parts_are_held_to_their_limits(settings: Settings, alice: User) -> None:
    client = create_app(settings.model_copy(update={
        "max_dataset_bytes": 8192, "upload_part_bytes": 2048})).test_client()  # fmt: skip
    assert_error(client.post(UPLOADS, json={"size": 9000}, headers=alice["headers"]), 413,
                 "payload_too_large")  # fmt: skip
    upload_id = _start(client, alice, 3000)["id"]
    assert_error(_put(client, alice, upload_id, 1, b"x" * 2049), 413, "payload_too_large")
    assert _put(client, alice, upload_id, 1, b"x" * 2048).status_code == 200
    # Within the part limit but past the size announced at start: the upload's own conflict.
    assert_error(_put(client, alice, upload_id, 2, b"x" * 1000), 409, "conflict")
    assert client.delete(f"{UPLOADS}/{upload_id}", headers=alice["headers"]).status_code == 204
    assert left_over(settings) == []


def test_an_abandoned_upload_expires(settings: Settings, alice: User) -> None:
    import os
    import time

    client = create_app(settings.model_copy(update={"upload_expiry_seconds": 60})).test_client()
    upload_id = _start(client, alice, 100)["id"]
    assert _put(client, alice, upload_id, 1, b"x" * 10).status_code == 200
    folder = settings.var_dir / "uploads" / "parts" / upload_id
    old = time.time() - 120
    os.utime(folder / "upload.json", (old, old))
    assert_error(client.get(f"{UPLOADS}/{upload_id}", headers=alice["headers"]), 404, "not_found")
    assert not folder.exists()
    other = _start(client, alice, 100)["id"]
    os.utime(settings.var_dir / "uploads" / "parts" / other / "upload.json", (old, old))
    _start(client, alice, 100)  # a new upload sweeps the expired ones of this host
    assert not (settings.var_dir / "uploads" / "parts" / other).exists()


def test_parts_and_completes_that_make_no_sense_are_refused(
    client: FlaskClient, alice: User, settings: Settings
) -> None:
    upload_id = _start(client, alice, 10)["id"]
    assert "empty" in assert_error(_put(client, alice, upload_id, 1, b""), 422,
                                   "invalid_input")["message"]  # fmt: skip
    over = assert_error(_put(client, alice, upload_id, 1, b"x" * 11), 409, "conflict")
    assert over["details"]["room"] == 10
    assert _put(client, alice, upload_id, 1, b"x" * 6).status_code == 200
    assert assert_error(_put(client, alice, upload_id, 2, b"x" * 5), 409, "conflict")
    complete = f"{UPLOADS}/{upload_id}/complete"
    for body in ([None, None], {"sha256": 1}, "abc"):
        r = client.post(complete, json=body, headers=alice["headers"])
        assert assert_error(r, 422, "invalid_input")["details"]["field"] == "sha256"
    r = client.post(complete, data="{", content_type="application/json", headers=alice["headers"])
    assert_error(r, 400, "bad_request")
    assert client.delete(f"{UPLOADS}/{upload_id}", headers=alice["headers"]).status_code == 204
