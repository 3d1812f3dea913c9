"""JSON request bodies, read within the limits of ``shared.spec.limits`` before any model sees
them: too deep, a string too long or a number that does not fit a float is a 422 in the one
error shape; a body that is not JSON a 400."""

from __future__ import annotations

from typing import Any

from flask import request

from shared.errors import BadRequest, InvalidInput, InvalidSpec, TrainqError
from shared.spec.limits import JsonLimits, JsonRefused, loads
from web.extensions import settings

# A spec's model may be a model.to_json() document as a string: walked as JSON of its own.
EMBEDDED = frozenset({"model.json"})


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
    limits (a job spec's is invalid_spec)."""
    if not request.is_json:
        raise BadRequest("send a JSON body with 'Content-Type: application/json'")
    try:
        body = loads(request.get_data(cache=True), json_limits())
    except JsonRefused as exc:
        if exc.malformed:
            raise BadRequest("the request body is not valid JSON") from None
        details: dict[str, Any] = {"field": exc.path}
        if refused is InvalidSpec:  # as pydantic's refusals of a spec: each field path
            details = {"errors": [{"field": exc.path, "message": exc.message}]}
        raise refused(str(exc), details=details) from None
    if body is None:
        raise BadRequest("the request body is not valid JSON")
    return body
