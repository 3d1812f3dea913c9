"""App-wide error handlers: every error leaves in the one JSON shape."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Flask, Response, has_request_context, jsonify, request
from gunicorn.http.errors import NoMoreData, ParseException
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from shared.db import describe, unavailable
from shared.errors import ErrorCode, TrainqError, Unavailable
from web import responses
from web.schemas import ErrorBody, ErrorDetail, ProtocolError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: ErrorCode.bad_request,
    401: ErrorCode.unauthorized,
    404: ErrorCode.not_found,
    405: ErrorCode.method_not_allowed,
    413: ErrorCode.payload_too_large,
    429: ErrorCode.rate_limited,
}


# When a client is told to try again while the database does not answer.
DATABASE_RETRY_SECONDS = 5


def database_unavailable() -> Unavailable:
    """The answer while the database is unreachable (or too slow): 503, try again shortly."""
    return Unavailable(
        "the database is unreachable or not answering in time; try again in "
        f"{DATABASE_RETRY_SECONDS} s",
        retry_after=DATABASE_RETRY_SECONDS,
        details={"service": "database"},
    )


# The paths of the model servers' protocols (TF Serving's /v1/models, KServe's /v2): their
# clients read the error shape those servers answer, {"error": "..."}.
_PROTOCOL_PATH = re.compile(r"^/v[12](/|$)")


def error_response(status: int, code: str, message: str, details: dict[str, Any]) -> Response:
    """The one error shape: {"error": {"code", "message", "details"}}; on the protocols' paths,
    theirs: {"error": "..."}, with invalid input as their 400."""
    if has_request_context() and _PROTOCOL_PATH.match(request.path):
        response = jsonify(responses.body(ProtocolError(error=message)))
        response.status_code = 400 if status == 422 else status
        return response
    error = ErrorBody(error=ErrorDetail(code=ErrorCode(code), message=message, details=details))
    response = jsonify(responses.body(error))
    response.status_code = status
    return response


def _field(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


_INNER_PATH = re.compile(r"^(?P<path>(?:config|class_name)[\w.\[\]]*): (?P<message>.*)$", re.S)
# The tags pydantic puts in an error's location for the branches of a union.
_UNION_TAGS = frozenset({"str", "int", "float", "bool", "none", "ObjectSpec"})


def validation_details(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    """Pydantic's errors as field paths and messages a person can act on."""
    errors = []
    raw = exc.errors(include_url=False, include_input=False)
    # Where a field is "a name or an object" and an object was given, the string branch's
    # complaint only hides the real one.
    deep = {e["loc"][:-1] for e in raw if e["type"] != "string_type"}
    for err in raw:
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in _UNION_TAGS))
        if err["type"] == "string_type" and any(d[: len(loc)] == loc for d in deep if d != loc):
            continue
        field, message = _field(loc), err["msg"].removeprefix("Value error, ")
        # Checks inside a layer's config name the sub-path first: "config.rate: ...".
        inner = _INNER_PATH.match(message)
        if inner:
            field, message = f"{field}.{inner['path']}", inner["message"]
        errors.append({"field": f"{prefix}{field}", "message": message})
    return errors


def holds_nul(exc: BaseException) -> bool:
    """Whether the database refused a value for the NUL character (``\\u0000``) in it:
    PostgreSQL stores and searches none in a text, nor reads one out of JSON as text."""
    if not isinstance(exc, sa_exc.DataError):
        return False
    cause = str(exc.orig)
    return "NUL (0x00)" in cause or "\\u0000" in cause


NUL_REFUSED = "a value holds a NUL character (\\u0000), which the database does not store"


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.url_value_preprocessor
    def _nul_in_path(_endpoint: str | None, values: dict[str, Any] | None) -> None:
        # No id or name in a path holds a NUL: nothing is found (and PostgreSQL, asked to
        # look for it, would refuse the query).
        if values and any(isinstance(v, str) and "\x00" in v for v in values.values()):
            raise NotFound("not found: no id or name holds a NUL character (\\u0000)")

    @app.errorhandler(TrainqError)
    def _trainq(exc: TrainqError) -> Response:
        response = error_response(exc.status, str(exc.code), exc.message, exc.details)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError) -> Response:
        errors = validation_details(exc)
        first = errors[0] if errors else {"field": "", "message": "invalid"}
        return error_response(
            422,
            str(ErrorCode.invalid_spec),
            f"{first['field']}: {first['message']}",
            {"errors": errors},
        )

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = _HTTP_CODES.get(
            status, ErrorCode.bad_request if status < 500 else ErrorCode.internal
        )
        response = error_response(status, str(code), exc.description or exc.name, {})
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:  # RFC 9110: say which
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, str(ErrorCode.internal), "internal error", {})

    @app.errorhandler(ParseException)
    @app.errorhandler(NoMoreData)
    def _unreadable(exc: Exception) -> Response:  # gunicorn, reading the body for the app
        return error_response(
            400, str(ErrorCode.bad_request), f"the request body could not be read: {exc}", {}
        )

    @app.errorhandler(sa_exc.DBAPIError)
    @app.errorhandler(sa_exc.TimeoutError)
    def _database(exc: Exception) -> Response:
        if holds_nul(exc):  # rolled back whole: nothing of the request is written
            return error_response(422, str(ErrorCode.invalid_input), NUL_REFUSED, {})
        if not unavailable(exc):  # a wrong query is a bug like any other
            return _unexpected(exc)
        log.warning("database unavailable: %s", describe(exc))
        return _trainq(database_unavailable())
