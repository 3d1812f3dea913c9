"""JSON request bodies, read within the limits of ``shared.spec.limits`` before any model sees
them: too deep, a string too long or a number that does not fit a float is a 422 in the one
error shape; a body that is not JSON a 400.

A job spec's body over its byte limit (the request's ``max_content_length``) is 413, read no
further than the limit: when those first bytes hold a string over the JSON limits (a layer name
of 59 million characters), the answer is the 422 a smaller body with that string gets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Annotated, Any, NoReturn, TypeVar

from flask import request
from pydantic import BaseModel, BeforeValidator, ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from shared.errors import BadRequest, InvalidInput, InvalidSpec, TrainqError
from shared.spec import oversize
from shared.spec.limits import JsonLimits, JsonRefused, loads
from web.extensions import settings

# A spec's model may be a model.to_json() document as a string: walked as JSON of its own.
EMBEDDED = frozenset({"model.json"})
# How much of a body over its limit is read and parsed at a time: the events of one piece are
# held at once, and the parser's work on a string across pieces grows with their number.
PIECE_BYTES = 256 * 1024
Query = TypeVar("Query", bound=BaseModel)

# A date or a date and time as a query parameter takes it (ISO 8601; without an offset, UTC).
TIME_PATTERN = (
    "[0-9]{4}-[0-9]{2}-[0-9]{2}"
    "(T[0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?"
)


def _utc(raw: object) -> datetime:
    if not isinstance(raw, str) or not re.fullmatch(TIME_PATTERN, raw):
        raise ValueError("give a date (2026-12-01) or a date and time (2026-12-01T09:30:00Z)")
    try:
        value = datetime.fromisoformat(raw)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{raw!r} is no date and time") from None


QueryTime = Annotated[datetime, BeforeValidator(_utc)]


def query(model: type[Query]) -> Query:
    """The request's query parameters as ``model``; one given twice, or a bad value, is 422
    naming it."""
    repeated = next((name for name, values in request.args.lists() if len(values) > 1), None)
    if repeated is not None:
        raise InvalidInput(f"query parameter {repeated}: give it once", details={"field": repeated})
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(map(str, first["loc"]))
        raise InvalidInput(
            f"query parameter {field}: {first['msg'].removeprefix('Value error, ')}",
            details={"field": field},
        ) from exc


def validated(model: type[Query]) -> Query:
    """The request's JSON body (checked as ``json_body``) as ``model``; the first thing wrong
    with it is a 422 naming its field."""
    from web.errors import validation_details

    try:
        return model.model_validate(json_body(InvalidInput))
    except ValidationError as exc:
        first = validation_details(exc)[0]
        raise InvalidInput(f"{first['field']}: {first['message']}", details=first) from None


def json_limits() -> JsonLimits:
    """The limits of this app's settings."""
    config = settings()
    return JsonLimits(
        max_depth=config.max_json_depth,
        max_string=config.max_json_string_chars,
        embedded=EMBEDDED,
    )


def json_body(refused: type[TrainqError] = InvalidInput) -> Any:
    """The request's JSON body, checked; ``refused`` is the error type of a body outside the
    limits (a job spec's is invalid_spec, and a spec over its byte limit is looked into)."""
    if not request.is_json:
        raise BadRequest("send a JSON body with 'Content-Type: application/json'")
    limit = request.max_content_length
    if refused is InvalidSpec and limit is not None and limit <= settings().max_spec_bytes:
        return _checked(_within(limit), refused)  # never more of a body than a spec's limit
    return _checked(request.get_data(cache=True), refused)


def json_bytes(raw: bytes) -> Any:
    """JSON bytes of the body, whatever its Content-Type (TF Serving's own examples post with
    curl -d, form-encoded), checked within the same limits."""
    return _checked(raw, InvalidInput)


def _checked(raw: bytes, refused: type[TrainqError]) -> Any:
    try:
        body = loads(raw, json_limits())
    except JsonRefused as exc:
        if exc.malformed:
            raise BadRequest("the request body is not valid JSON") from None
        _refuse(exc, refused)
    if body is None:
        raise BadRequest("the request body is not valid JSON")
    return body


def _refuse(exc: JsonRefused, refused: type[TrainqError]) -> NoReturn:
    details: dict[str, Any] = {"field": exc.path}
    if refused is InvalidSpec:  # as pydantic's refusals of a spec: each field path
        details = {"errors": [{"field": exc.path, "message": exc.message}]}
    raise refused(str(exc), details=details) from None


def _within(limit: int) -> bytes:
    """The body if it is ``limit`` bytes at most; else, once its first ``limit`` bytes are read
    (never more), the refusal of a string over the JSON limits they show, or 413."""
    length = request.content_length
    if length is not None and length <= limit:
        return request.get_data(cache=True)
    if length is None and "wsgi.input_terminated" not in request.environ:
        return request.get_data(cache=True)  # no length, a server that does not end the stream
    stream = request.environ["wsgi.input"]  # past werkzeug, which refuses without reading
    if length is not None:
        pieces: Iterator[bytes] = _pieces(stream, limit)
    else:  # chunked: what fits the limit is an ordinary body
        held = list(_pieces(stream, limit + 1))
        if sum(map(len, held)) <= limit:
            return b"".join(held)
        held[-1] = held[-1][:-1]  # the byte past the limit
        pieces = (piece for piece in held if piece)
    found = oversize.long_string(pieces, json_limits())
    if found is not None:
        _refuse(found, InvalidSpec)
    raise RequestEntityTooLarge()


def _pieces(stream: IO[bytes], budget: int) -> Iterator[bytes]:
    while budget > 0 and (piece := stream.read(min(PIECE_BYTES, budget))):
        budget -= len(piece)
        yield piece
