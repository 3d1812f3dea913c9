"""What the first bytes of a JSON body too large to read show.

A body over its byte limit is refused, and read no further than the limit. Those first bytes
may show why: one string (or key) longer than ``JsonLimits.max_string``, such as a layer name of
59 million characters, is a mistake the caller fixes by name, so ``long_string`` refuses it as
``limits.check`` would, at the same path; anything else (big arrays, many keys) is just too
large. The bytes are parsed incrementally (ijson, on its C backend where the wheel has it), so
the memory held is the string being parsed and the events of one piece, never the whole body.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from operator import itemgetter
from typing import Any

import ijson

from shared.spec.limits import JsonLimits, JsonRefused
from shared.spec.limits import _path as join_path

# An escape the cut left unfinished: a backslash not itself escaped, with part of a \uXXXX.
_CUT_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*(\\(?:u[0-9A-Fa-f]{0,3})?)\Z")
# One letter for each kind of event: "n" for those that only count as an item of an array.
_CODES = {
    "number": "n",
    "boolean": "n",
    "null": "n",
    "string": "s",
    "map_key": "k",
    "start_map": "{",
    "start_array": "[",
    "end_map": "}",
    "end_array": "]",
}
_OTHER = re.compile("[^n]")
# Enough to hold a character or an escape the limit cut (and the backslashes before it).
_TAIL_BYTES = 64


class _Stop(Exception):
    """Nested deeper than the limits, or not JSON: not this module's question (the body is
    refused as too large)."""


def _whole(tail: bytes) -> bytes:
    """``tail`` without the UTF-8 character or escape the limit cut in two, if it cut one."""
    for back in range(1, min(4, len(tail)) + 1):
        byte = tail[-back]
        if byte < 0x80:
            break
        if byte >= 0xC0:  # the lead byte: the character needs 2, 3 or 4
            if back < (2 if byte < 0xE0 else 3 if byte < 0xF0 else 4):
                tail = tail[:-back]
            break
    cut = _CUT_ESCAPE.search(tail)
    return tail[: cut.start(1)] if cut else tail


class _Walk:
    """Where the parser is (the key or index in each open object and array), and the first
    string or key over the limit it has seen."""

    def __init__(self, limits: JsonLimits) -> None:
        self.limits = limits
        self.open: list[str | int] = []  # an object's current key, an array's current index

    def where(self, depth: int | None = None) -> str:
        path = ""
        for key in self.open[:depth]:
            path = join_path(path, key)
        return path

    def refusal(self, events: list[tuple[str, Any]], cut: bool) -> JsonRefused | None:
        """The refusal of the first string or key over the limit in ``events`` (``cut``: the
        string is the one the limit cut short, so it has at least that many characters)."""
        cap, open_ = self.limits.max_string, self.open
        codes = "".join(map(_CODES.__getitem__, map(itemgetter(0), events)))
        done = 0  # the numbers, booleans and nulls between the others only count, at C speed
        for other in _OTHER.finditer(codes):
            at = other.start()
            if open_ and type(open_[-1]) is int:
                open_[-1] += at - done
            done = at + 1
            event, value = events[at]
            if event == "map_key":
                if len(value) > cap:
                    size = f"at least {len(value)}" if cut else len(value)
                    where = self.where(-1) or "body"
                    return JsonRefused(where, f"a key of {size} characters; at most {cap}")
                open_[-1] = value
            elif event in ("end_map", "end_array"):
                open_.pop()
            else:  # a string, an object or an array: one more item if in an array
                if open_ and type(open_[-1]) is int:
                    open_[-1] += 1
                if event == "string":
                    if len(value) > cap and (where := self.where()) not in self.limits.embedded:
                        size = f"at least {len(value)}" if cut else len(value)
                        return JsonRefused(where, f"a string of {size} characters; at most {cap}")
                elif len(open_) >= self.limits.max_depth:
                    raise _Stop
                else:
                    open_.append("" if event == "start_map" else -1)
        if open_ and type(open_[-1]) is int:
            open_[-1] += len(codes) - done
        return None


def _feed(
    parser: Any, data: bytes, events: list[Any], walk: _Walk, cut: bool = False
) -> JsonRefused | None:
    """Parse ``data`` further; the refusal its events show, if any."""
    if not data:  # to the parser, no bytes are the end of the document
        return None
    try:
        parser.send(data)
    except (ijson.JSONError, ValueError):  # not JSON: the events before it still count
        broken = True
    else:
        broken = False
    found = walk.refusal(events, cut)
    events.clear()
    if broken and found is None:
        raise _Stop
    return found


def long_string(pieces: Iterable[bytes], limits: JsonLimits) -> JsonRefused | None:
    """The refusal of the first string or key over ``limits.max_string`` in ``pieces``, the
    first bytes of a body cut at its limit (its last string may be cut short), or None."""
    events = ijson.sendable_list()
    parser = ijson.basic_parse_coro(events, use_float=True)
    walk = _Walk(limits)
    tail = b""  # the last bytes wait for the next piece: at the end, they are where the limit cut
    try:
        for piece in pieces:
            joined = tail + piece
            data, tail = joined[:-_TAIL_BYTES], joined[-_TAIL_BYTES:]
            if found := _feed(parser, data, events, walk):
                return found
        if found := _feed(parser, _whole(tail), events, walk):
            return found
        # The string the limit cut, if it cut one, closes here.
        return _feed(parser, b'"', events, walk, cut=True)
    except _Stop:
        return None
