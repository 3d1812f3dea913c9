"""trainq.sse reads a text/event-stream, however its bytes are cut, and talks no HTTP."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import ROOT
from trainq.sse import Event, Parser, parse, parse_lines

# As the API sends a job's stream: the retry hint, events, a keep-alive comment.
STREAM = (
    "retry: 2000\n\n"
    'id: 1\nevent: status\ndata: {"id": 1, "type": "status", "status": "running"}\n\n'
    ": keep-alive\n\n"
    'id: 2\nevent: epoch\ndata: {"id": 2, "type": "epoch", "epoch": 1, "note": "é"}\n\n'
).encode()


def test_events_of_the_api_stream() -> None:
    events = list(parse([STREAM]))
    assert [(e.type, e.id, e.retry) for e in events] == [
        ("status", "1", 2000),
        ("epoch", "2", 2000),
    ]
    assert json.loads(events[1].data)["note"] == "é"


def test_the_same_events_whatever_the_chunks() -> None:
    whole = list(parse([STREAM]))
    assert list(parse(STREAM[i : i + 1] for i in range(len(STREAM)))) == whole
    for cut in range(len(STREAM)):  # a multi-byte character or a CRLF cut in two as well
        assert list(parse([STREAM[:cut], STREAM[cut:]])) == whole
    crlf = STREAM.replace(b"\n", b"\r\n")
    assert list(parse(crlf[i : i + 1] for i in range(len(crlf)))) == whole
    assert list(parse([STREAM.replace(b"\n", b"\r")])) == whole


def test_field_rules() -> None:
    lines = [
        "\ufeffdata: first",  # a byte order mark at the start is dropped
        "data:second",  # no space after the colon
        "data:  third",  # only one space is removed
        "",
        "event: custom",
        "id: 7",
        "unknown: ignored",
        "data",  # a field name alone: an empty value
        "",
        "",  # a blank line with nothing buffered dispatches nothing
        "id: 8\0",  # an id with NUL is ignored
        "retry: soon",  # not digits: ignored
        "data: kept id",
        "",
        "data: never dispatched",  # the stream ends before the blank line
    ]
    assert list(parse_lines(lines)) == [
        Event("first\nsecond\n third"),
        Event("", "custom", "7"),
        Event("kept id", "message", "7"),
    ]


def test_parser_keeps_state_between_feeds() -> None:
    parser = Parser()
    assert parser.feed(b"id: 3\ndata: a") == []
    assert parser.last_event_id == "3"
    assert parser.feed(b"\n\n") == [Event("a", "message", "3")]


def test_the_parser_needs_no_http() -> None:
    """trainq/sse.py runs on its own: it imports neither requests nor the client."""
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('sse', 'trainq/sse.py')\n"
        "sse = sys.modules['sse'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(sse)\n"
        "assert [e.data for e in sse.parse([b'data: x\\n\\n'])] == ['x']\n"
        "print(sorted(m for m in sys.modules if m.startswith(('requests', 'trainq', 'urllib3'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
