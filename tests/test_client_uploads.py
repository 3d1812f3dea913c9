"""The SDK uploads a large file in parts over real HTTP, sends a part again after a dropped
connection, and resumes an interrupted upload by its id: the dataset's SHA-256 is the file's."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from werkzeug.serving import make_server

import trainq
import trainq.client
from shared.settings import Settings
from trainq import parts
from web import create_app


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    http = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}"
    http.shutdown()


@pytest.fixture(autouse=True)
def _parts_above_64_kib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trainq.client, "PARTS_ABOVE", 64 * 1024)


def _file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    path = tmp_path / "big.npz"
    np.savez(path, x_train=rng.normal(size=(4000, 8)).astype("float32"),
             y_train=rng.integers(0, 2, 4000))  # fmt: skip
    return path


def _drop(monkeypatch: pytest.MonkeyPatch, when: Any) -> list[str]:
    """Make requests whose (method, url) ``when`` picks fail as a dropped connection."""
    real, seen = requests.Session.request, []

    def request(self: requests.Session, method: str, url: str, **kwargs: Any) -> Any:
        seen.append(f"{method} {url.split('/api/v1')[1]}")
        if when(method, url, len(seen)):
            raise requests.ConnectionError("connection reset by peer")
        return real(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", request)
    return seen


def test_a_large_file_goes_in_parts_and_a_dropped_part_is_sent_again(
    server: str, alice: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _file(tmp_path)
    monkeypatch.setattr(parts, "RETRIES", 3)
    dropped: list[int] = []

    def once(method: str, url: str, n: int) -> bool:
        if method == "PUT" and url.endswith("/parts/2") and not dropped:
            dropped.append(n)
            return True
        return False

    seen = _drop(monkeypatch, once)
    client = trainq.Client(server, alice["token"])
    body = client.upload_dataset(path, "big", part_bytes=40_000, resume=None, progress=True)
    assert body["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert body["size_bytes"] == path.stat().st_size and body["n_train"] == 4000
    puts = [s for s in seen if s.startswith("PUT")]
    assert len(puts) == -(-path.stat().st_size // 40_000) + 1  # part 2 twice
    assert dropped and any(s.startswith("GET /uploads/") for s in seen)  # asked what arrived


def test_an_interrupted_upload_resumes_from_the_parts_that_arrived(
    server: str, alice: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _file(tmp_path)
    monkeypatch.setattr(parts, "RETRIES", 1)
    seen = _drop(monkeypatch, lambda method, url, n: method == "PUT" and url.endswith("/4"))
    client = trainq.Client(server, alice["token"])
    with pytest.raises(parts.UploadInterrupted) as stopped:
        client.upload_dataset(path, "big", part_bytes=40_000)
    upload_id = stopped.value.upload_id
    assert upload_id in str(stopped.value)
    monkeypatch.undo()
    seen = _drop(monkeypatch, lambda *a: False)
    body = client.upload_dataset(path, "big", part_bytes=40_000, resume=upload_id)
    assert body["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    count = -(-path.stat().st_size // 40_000)
    assert [s for s in seen if s.startswith("PUT")] == [
        f"PUT /uploads/{upload_id}/parts/{n}" for n in range(4, count + 1)
    ]  # parts 1 to 3 are not sent again
