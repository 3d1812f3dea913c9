"""Limits on any JSON a caller sends, checked before pydantic or Keras see it.

``parse`` reads a JSON body and walks it once, without recursion: nesting deeper than
``max_depth``, a string (or key) longer than ``max_string``, or a number that does not fit a
float (``10**400``, ``1e400``, ``NaN``) is refused with the path where it was found. The
walker is generic: it knows nothing of job specs, so every body of the API goes through it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class JsonLimits:
    """What a body may hold: nesting depth and the length of any string or key."""

    max_depth: int = 64
    max_string: int = 1024
    # Paths whose string is a JSON document of its own (a spec's model.json, as to_json()
    # writes it): not held to max_string, but parsed and walked within the same limits.
    embedded: frozenset[str] = frozenset()


class JsonRefused(ValueError):
    """A body outside the limits, or not JSON: ``path`` is where (``""``: the body itself)."""

    def __init__(self, path: str, message: str, malformed: bool = False) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path, self.message, self.malformed = path, message, malformed


def loads(raw: bytes | str, limits: JsonLimits) -> Any:
    """Parse a JSON body within ``limits``, then walk it (``check``)."""
    try:
        value = json.loads(raw)  # NaN and Infinity parse, and the walk refuses them
    except RecursionError as exc:
        raise JsonRefused("", f"the body is nested more than {limits.max_depth} deep") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        if "integer string conversion" in str(exc):  # JSON, but an integer of 4300+ digits
            raise JsonRefused("", "an integer too large for a 64-bit float") from exc
        raise JsonRefused("", f"the request body is not valid JSON: {exc}", True) from exc
    check(value, limits)
    return value


def _path(parent: str, key: int | str) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def _numbers_fit(row: list[Any]) -> bool:
    """Whether a list holds only finite numbers that all fit a float (False: look at each)."""
    if not row or not set(map(type, row)) <= {int, float}:
        return False
    try:  # the sum is NaN or infinite if one is (1e400 parses as inf); max and min find an
        # integer beyond a float's range (float() overflows), which a sum may cancel out
        return all(math.isfinite(float(v)) for v in (sum(row), max(row), min(row)))
    except OverflowError:
        return False


def _embedded(
    text: str, path: str, depth: int, limits: JsonLimits, stack: list[tuple[Any, str, int]]
) -> None:
    try:
        document = json.loads(text)
    except RecursionError:
        raise JsonRefused(path, f"nested more than {limits.max_depth} deep") from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):
            raise JsonRefused(path, "an integer too large for a 64-bit float") from None
        return  # not JSON: the spec's own check says so
    stack.append((document, path, depth))


def check(value: Any, limits: JsonLimits) -> None:
    """Walk parsed JSON: refuse depth, long strings and numbers that do not fit a float."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, dict):
            if depth >= limits.max_depth:
                raise JsonRefused(path, f"nested more than {limits.max_depth} deep")
            for key, sub in item.items():
                if len(key) > limits.max_string:
                    where = path or "body"
                    raise JsonRefused(
                        where, f"a key of {len(key)} characters; at most {limits.max_string}"
                    )
                if isinstance(sub, dict | list | str | int | float):
                    stack.append((sub, _path(path, key), depth + 1))
        elif isinstance(item, list):
            if depth >= limits.max_depth:
                raise JsonRefused(path, f"nested more than {limits.max_depth} deep")
            if _numbers_fit(item):  # the bulk of inline data, checked at C speed
                continue
            for i, sub in enumerate(item):
                if isinstance(sub, dict | list | str | int | float):
                    stack.append((sub, _path(path, i), depth + 1))
        elif isinstance(item, str):
            if path in limits.embedded:
                _embedded(item, path, depth, limits, stack)
            elif len(item) > limits.max_string:
                raise JsonRefused(
                    path, f"a string of {len(item)} characters; at most {limits.max_string}"
                )
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise JsonRefused(path, "must be a finite number (NaN, or too large for a float)")
        elif isinstance(item, int) and not isinstance(item, bool):
            try:
                float(item)
            except OverflowError:
                raise JsonRefused(path, "an integer too large for a 64-bit float") from None
