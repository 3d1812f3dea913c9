"""A parser of server-sent events (text/event-stream): bytes or lines in, events out.

It follows the HTML standard's rules for reading the stream (lines end with CR, LF or CRLF,
``:`` starts a comment, ``data`` lines join with a newline, ``id`` is kept until the next one,
an event is dispatched by a blank line, an unfinished last event is dropped). Nothing here
talks HTTP: ``Client.follow`` opens the connection, feeds its bytes in and resumes after a drop.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_END_OF_LINE = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class Event:
    """One dispatched event."""

    data: str
    type: str = "message"
    # The last event ID in effect when the event was dispatched (what Last-Event-ID resumes).
    id: str | None = None
    # The reconnection time the stream asked for, in milliseconds, if it did.
    retry: int | None = None


class Parser:
    """Reads a stream incrementally: ``feed`` it bytes as they arrive, get whole events back."""

    def __init__(self) -> None:
        self.last_event_id: str | None = None
        self.retry: int | None = None
        self._pending = b""  # the start of a line whose end has not arrived
        self._after_cr = False  # the last chunk ended in CR: an LF first in the next is its end
        self._first_line = True
        self._data: list[str] = []
        self._type = ""

    def feed(self, chunk: bytes) -> list[Event]:
        """The events that this chunk completes."""
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._after_cr = False
        buffer, start, events = self._pending + chunk, 0, []
        for end in _END_OF_LINE.finditer(buffer):
            event = self.feed_line(buffer[start : end.start()].decode("utf-8", "replace"))
            if event is not None:
                events.append(event)
            start = end.end()
            self._after_cr = end.group() == b"\r" and start == len(buffer)
        self._pending = buffer[start:]
        return events

    def feed_line(self, line: str) -> Event | None:
        """Read one line (without its line ending); the event it dispatches, if it does."""
        if self._first_line:
            self._first_line = False
            line = line.removeprefix("\ufeff")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._type = value
        elif field == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> Event | None:
        data, kind = self._data, self._type
        self._data, self._type = [], ""
        if not data:
            return None
        return Event("\n".join(data), kind or "message", self.last_event_id, self.retry)


def parse(chunks: Iterable[bytes]) -> Iterator[Event]:
    """The events of a stream's bytes, in whatever chunks they come."""
    parser = Parser()
    for chunk in chunks:
        yield from parser.feed(chunk)


def parse_lines(lines: Iterable[str]) -> Iterator[Event]:
    """The events of a stream already split into lines (without their line endings)."""
    parser = Parser()
    for line in lines:
        event = parser.feed_line(line)
        if event is not None:
            yield event
