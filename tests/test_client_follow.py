"""Client.follow without a server: it resumes after a drop and waits when told to."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

import trainq
from trainq import client as client_module


def _frame(event_id: int, kind: str, **body: Any) -> bytes:
    data = json.dumps({"id": event_id, "type": kind, **body})
    return f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n".encode()


class _Stream:
    def __init__(self, chunks: list[bytes], then: Exception | None = None) -> None:
        self.chunks, self.then = chunks, then

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        yield from self.chunks
        if self.then is not None:
            raise self.then


def test_follow_resumes_after_a_drop_and_waits_while_busy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running = _frame(1, "status", status="running")
    epoch = _frame(2, "epoch", epoch=1)
    answers: list[Any] = [
        _Stream([b"retry: 2000\n\n", running, epoch[:7]], requests.ConnectionError("dropped")),
        trainq.ApiError.of(503, "unavailable", "busy", {"retry_after": 3}),
        _Stream([epoch, b": keep-alive\n\n", _frame(3, "status", status="succeeded")]),
    ]
    asked: list[str] = []
    slept: list[float] = []

    def call(method: str, path: str, **kwargs: Any) -> Any:
        assert (method, path, kwargs["stream"]) == ("GET", "/api/v1/jobs/j1/events", True)
        asked.append(kwargs["headers"]["Last-Event-ID"])
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = trainq.Client("http://trainq.invalid", "tq_x")
    monkeypatch.setattr(client, "_call", call)
    monkeypatch.setattr(client_module.time, "sleep", slept.append)
    events = list(client.follow("j1", retry=0.5))
    assert [(e["id"], e["type"]) for e in events] == [(1, "status"), (2, "epoch"), (3, "status")]
    assert asked == ["0", "1", "1"]  # the half-sent epoch 2 is asked for again
    assert slept == [0.5, 3.0]


def test_follow_ends_when_the_stream_closes_on_a_finished_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = trainq.Client("http://trainq.invalid", "tq_x")
    monkeypatch.setattr(client, "_call", lambda *a, **k: _Stream([_frame(4, "epoch", epoch=2)]))
    monkeypatch.setattr(client, "get", lambda job_id: {"status": "cancelled"})
    assert [e["id"] for e in client.follow("j1", last_event_id=3)] == [4]


def test_follow_waits_while_over_the_callers_share_of_streams(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers: list[Any] = [
        trainq.ApiError.of(429, "rate_limited", "your share", {"retry_after": 2}),
        _Stream([_frame(1, "status", status="succeeded")]),
    ]
    slept: list[float] = []

    def call(method: str, path: str, **kwargs: Any) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = trainq.Client("http://trainq.invalid", "tq_x")
    monkeypatch.setattr(client, "_call", call)
    monkeypatch.setattr(client_module.time, "sleep", slept.append)
    assert [e["id"] for e in client.follow("j1")] == [1]
    assert slept == [2.0]


def test_follow_sweep_goes_past_trials_ending_and_resumes_until_the_sweep_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    done = _frame(5, "status", status="succeeded", trial=0, job_id="t0")
    summary = {"id": "s1", "status": "succeeded", "best": None}
    end = f"id: 7\nevent: sweep\ndata: {json.dumps(summary)}\n\n".encode()
    answers: list[Any] = [
        _Stream([done, _frame(6, "status", status="pruned", trial=1, job_id="t1")[:9]],
                requests.exceptions.ChunkedEncodingError("dropped")),
        trainq.ApiError.of(429, "rate_limited", "your share", {}),
        _Stream([_frame(6, "status", status="pruned", trial=1, job_id="t1"), end]),
    ]  # fmt: skip
    asked: list[str] = []
    slept: list[float] = []

    def call(method: str, path: str, **kwargs: Any) -> Any:
        assert (method, path) == ("GET", "/api/v1/sweeps/s1/events")
        asked.append(kwargs["headers"]["Last-Event-ID"])
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = trainq.Client("http://trainq.invalid", "tq_x")
    monkeypatch.setattr(client, "_call", call)
    monkeypatch.setattr(client_module.time, "sleep", slept.append)
    events = list(client.follow_sweep("s1", last_event_id=4, retry=0.5))
    assert [(e["id"], e["type"], e.get("trial")) for e in events] == [
        (5, "status", 0), (6, "status", 1), (7, "sweep", None),
    ]  # fmt: skip
    assert events[-1]["sweep"] == summary  # the summary's own id is not the event's
    assert asked == ["4", "5", "5"]
    assert slept == [0.5, 0.5]  # no Retry-After: the retry interval


def test_follow_sweep_asks_for_the_sweep_when_the_stream_closes_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    streams = [_Stream([_frame(2, "epoch", epoch=1, trial=0)]), _Stream([])]
    states = iter([{"id": "s1", "status": "running"}, {"id": "s1", "status": "cancelled"}])
    client = trainq.Client("http://trainq.invalid", "tq_x")
    monkeypatch.setattr(client, "_call", lambda *a, **k: streams.pop(0))
    monkeypatch.setattr(client, "get_sweep", lambda sweep_id: next(states))
    monkeypatch.setattr(client_module.time, "sleep", lambda s: None)
    events = list(client.follow_sweep("s1"))
    assert [(e["id"], e["type"]) for e in events] == [(2, "epoch"), (2, "sweep")]
    assert events[-1]["sweep"]["status"] == "cancelled"


def test_the_clients_final_statuses_are_the_servers() -> None:
    from shared.models import FINISHED

    assert set(client_module.FINISHED) == {str(s) for s in FINISHED}  # pruned among them
    assert client_module.is_final({"type": "status", "status": "pruned"})
