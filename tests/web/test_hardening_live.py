"""What gunicorn answers itself, and what reaches the app through it, against the shared live
API: every refusal in the one JSON error shape with the security headers, no server banner, and
the service healthy afterwards."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import requests

from tests.live import Live
from tests.specs import quickstart

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def live(live_stacks: Any) -> Live:
    return live_stacks.get("sqlite")  # type: ignore[no-any-return]


def _raw(live: Live, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; the status, headers and body of the answer."""
    where = urlparse(live.url)
    with socket.create_connection((where.hostname, where.port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        while len(body) < int(headers["Content-Length"]) and (chunk := sock.recv(65536)):
            body += chunk  # the first answer only: the server may wait for the rest of a body
    return int(lines[0].split()[1]), headers, body


def _is_error(status: int, headers: dict[str, str], body: bytes, expected: int) -> dict[str, Any]:
    assert status == expected, body
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    assert "Server" not in headers
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "details"} and error["message"]
    return error  # type: ignore[no-any-return]


def _still_serves(live: Live) -> None:
    assert requests.get(f"{live.url}/healthz", timeout=10).status_code == 200
    assert requests.get(f"{live.url}/api/v1/me", headers=live.alice, timeout=10).status_code == 200


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        pytest.param(b"GET /api/v1/jobs?x=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                     414, id="request-line-too-long"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
                     431, id="header-too-large"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                     + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n",
                     431, id="too-many-headers"),
        pytest.param(b"NOT A REQUEST\r\n\r\n", 400, id="bad-request-line"),
        pytest.param(b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     b"Authorization: TOKEN\r\nContent-Type: application/json\r\n\r\n"
                     b"zz\r\n{}\r\n0\r\n\r\n", 400, id="bad-chunk"),
    ],
)  # fmt: skip
def test_gunicorn_answers_in_the_error_shape(live: Live, request_bytes: bytes, status: int) -> None:
    token = live.alice["Authorization"].encode()
    error = _is_error(*_raw(live, request_bytes.replace(b"TOKEN", token)), status)
    assert error["code"] == "bad_request"
    _still_serves(live)


def test_a_body_too_large_is_refused_before_it_is_read(live: Live) -> None:
    token = live.alice["Authorization"]
    head = (f"POST /api/v1/datasets HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 50000000000\r\n"
            "Connection: close\r\n\r\n").encode()  # fmt: skip
    error = _is_error(*_raw(live, head + b"--b\r\n"), 413)
    assert error["code"] == "payload_too_large"
    _still_serves(live)


def test_what_broke_the_app_is_refused_through_gunicorn(live: Live) -> None:
    jobs = f"{live.url}/api/v1/jobs"
    headers = {**live.alice, "Content-Type": "application/json"}
    before = requests.get(jobs, headers=live.alice, timeout=10).json()["total"]
    deep = '{"name": "deep", "fit": ' + "[" * 10_000 + "]" * 10_000 + "}"
    huge = json.dumps(quickstart()).replace('"units": 128', '"units": 1' + "0" * 400)
    for body, code in ((deep, "invalid_spec"), (huge, "invalid_spec")):
        r = requests.post(jobs, data=body, headers=headers, timeout=30)
        assert r.status_code == 422 and r.json()["error"]["code"] == code, r.text
        assert "Server" not in r.headers and r.headers["Cache-Control"] == "no-store"
    r = requests.post(f"{jobs}/{'0' * 32}/predict", headers=headers, timeout=30,
                      data='{"instances": [[1, 1' + "0" * 400 + "]]}")  # fmt: skip
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input", r.text
    job = live.submit(quickstart(epochs=1))
    r = requests.get(f"{jobs}/{job['id']}/events?last_event_id={10**30}", headers=live.alice,
                     timeout=10)  # fmt: skip
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input", r.text
    assert requests.get(jobs, headers=live.alice, timeout=10).json()["total"] == before + 1
    _still_serves(live)


def test_no_answer_names_the_server(live: Live) -> None:
    for path in ("/healthz", "/", "/docs", "/openapi.json", "/static/dashboard.js"):
        r = requests.get(f"{live.url}{path}", timeout=10)
        assert r.status_code == 200 and "Server" not in r.headers, path
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    page = requests.get(f"{live.url}/", timeout=10)
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def _workers_rss_mb(live: Live) -> float:
    master = live.service.procs["web"].pid
    total = 0.0
    for task in Path(f"/proc/{master}/task").iterdir():
        for child in (task / "children").read_text().split():
            status = Path(f"/proc/{child}/status").read_text().splitlines()
            total += int(next(ln for ln in status if ln.startswith("VmRSS:")).split()[1]) / 1024
    return total


def _streamed(live: Live, head: bytes, body: bytes, chunked: bool) -> tuple[Any, float, float]:
    """Send a request whose body goes on while the answer is read, as a client that sends all
    of it does: the answer, the seconds it took and the most the API's workers grew (MB)."""
    where = urlparse(live.url)
    before = _workers_rss_mb(live)
    peaks = [before]
    answered = threading.Event()

    def send(sock: socket.socket) -> None:
        try:
            sock.sendall(head)
            for at in range(0, len(body), 1 << 20):
                piece = body[at : at + (1 << 20)]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            sock.sendall(b"0\r\n\r\n" if chunked else b"")
        except OSError:  # the server answered and closed: the rest was never wanted
            pass

    def watch() -> None:  # the workers' memory while they read and refuse
        while not answered.wait(0.005):
            peaks.append(_workers_rss_mb(live))

    with socket.create_connection((where.hostname, where.port), timeout=30) as sock:
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        started = time.monotonic()
        sender = threading.Thread(target=send, args=(sock,), daemon=True)
        sender.start()
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
        head_, _, rest = answer.partition(b"\r\n\r\n")
        lines = head_.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        while len(rest) < int(headers["Content-Length"]) and (chunk := sock.recv(65536)):
            rest += chunk
        took = time.monotonic() - started
        answered.set()
        watcher.join()
        sender.join(timeout=30)
    grew = max([*peaks, _workers_rss_mb(live)]) - before
    return (int(lines[0].split()[1]), headers, rest), took, grew


def _submit_head(live: Live, length: int | None) -> bytes:
    size = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
    return (
        f"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: {live.alice['Authorization']}\r\n{size}\r\nConnection: close\r\n\r\n"
    ).encode()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_spec_of_59_million_characters_is_refused_by_name(live: Live, chunked: bool) -> None:
    """A layer name of 59 million characters (which once took a worker to 22 GB): the API reads
    no more than the spec's limit (8 MiB) of it, and refuses it by name, fast, holding none of
    it, while the client is still sending the rest."""
    spec = quickstart(epochs=1)
    spec["model"]["layers"][1]["config"]["name"] = "n" * 59_000_000
    body = json.dumps(spec).encode()
    jobs = requests.get(f"{live.url}/api/v1/jobs", headers=live.alice, timeout=10).json()["total"]
    head = _submit_head(live, None if chunked else len(body))
    answer, took, grew = _streamed(live, head, body, chunked)
    error = _is_error(*answer, 422)
    assert error["code"] == "invalid_spec"
    [refusal] = error["details"]["errors"]
    assert refusal["field"] == "model.layers[1].config.name"
    assert refusal["message"].startswith("a string of at least "), refusal
    assert took < 1.0, took
    assert grew < 50, grew
    after = requests.get(f"{live.url}/api/v1/jobs", headers=live.alice, timeout=10).json()
    assert after["total"] == jobs
    _still_serves(live)


def test_a_spec_over_the_limit_for_its_size_alone_is_413(live: Live) -> None:
    """Big arrays, no string too long: too large, read no further than the limit."""
    spec = quickstart(epochs=1)
    spec["fit"]["sample_weight"] = [1.0] * 5_000_000
    body = json.dumps(spec).encode()
    answer, _, grew = _streamed(live, _submit_head(live, len(body)), body, chunked=False)
    error = _is_error(*answer, 413)
    assert error["code"] == "payload_too_large"
    assert grew < 50, grew
    _still_serves(live)
