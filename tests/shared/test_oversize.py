"""The first bytes of a JSON body over its limit: a string too long is named at the path
``limits.check`` gives it, wherever the limit cuts; anything else is no answer (too large)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from shared.spec.limits import JsonLimits, JsonRefused, check
from shared.spec.oversize import long_string

LIMITS = JsonLimits(max_depth=8, max_string=100, embedded=frozenset({"model.json"}))


def _pieces(body: bytes, size: int = 1000) -> Iterator[bytes]:
    return (body[at : at + size] for at in range(0, len(body), size))


def _first(
    value: Any, limit: int, ensure_ascii: bool = True, piece: int = 1000
) -> JsonRefused | None:
    body = json.dumps(value, ensure_ascii=ensure_ascii).encode()
    assert len(body) > limit
    return long_string(_pieces(body[:limit], piece), LIMITS)


def _checked(value: Any) -> JsonRefused:
    with pytest.raises(JsonRefused) as refused:
        check(value, LIMITS)
    return refused.value


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, 2, {"b": [True, None, "x" * 150]}], "z": [0] * 5000},
        {"a": [[1.5] * 700, {"k" * 150: 1}], "z": [0] * 5000},
        [{"x": "y"}, ["s", "t", "w" * 101], list(range(5000))],
    ],
    ids=["string", "key", "top-level-array"],
)
def test_a_whole_string_too_long_is_refused_as_check_refuses_it(value: Any) -> None:
    found = _first(value, 8000)
    assert found is not None
    expected = _checked(value)
    assert (found.path, found.message) == (expected.path, expected.message)


@pytest.mark.parametrize(
    ("text", "ensure_ascii"),
    [("n", True), ("é", False), ("€", False), ("😀", False), ("\n", True), ("\u1234", True)],
    ids=["ascii", "2-byte", "3-byte", "4-byte", "escape", "unicode-escape"],
)
@pytest.mark.parametrize("piece", [1, 7, 1000])
def test_a_string_the_limit_cuts_anywhere_is_refused_by_its_path(
    text: str, ensure_ascii: bool, piece: int
) -> None:
    value = {"model": {"layers": [{}, {"config": {"name": text * 5000}}]}}
    for limit in range(1000, 1007):  # every place in a character or an escape
        found = _first(value, limit, ensure_ascii, piece)
        assert found is not None, limit
        assert found.path == "model.layers[1].config.name"
        assert found.message.startswith("a string of at least ")


def test_a_string_the_limit_cuts_below_the_cap_is_no_answer() -> None:
    assert _first({"a": [0] * 1000, "b": "x" * 1000}, 3010) is None


@pytest.mark.parametrize(
    "value",
    [
        {"fit": {"sample_weight": [0.5] * 10_000, "x": [[1, 2, 3]] * 2000}},
        {f"k{i}": "v" for i in range(5000)},
        {"model": {"json": json.dumps({"x": "n" * 10_000})}},  # a document of its own
        {"a": [[[[[[[[[["x" * 5000]]]]]]]]]]},  # too deep first: not this question
    ],
    ids=["arrays", "many-keys", "model-json", "too-deep"],
)
def test_a_body_too_large_for_anything_else_is_no_answer(value: Any) -> None:
    assert _first(value, 4000) is None


def test_a_prefix_that_is_not_json_is_no_answer() -> None:
    assert long_string(iter([b'{"a": [1, 2} "' + b"x" * 500]), LIMITS) is None
