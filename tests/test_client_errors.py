"""The SDK has one error type for every error code the server can answer, and raises it."""

from __future__ import annotations

import pytest

import trainq
from shared import errors as server
from trainq import errors


def test_every_server_error_code_has_a_client_type() -> None:
    missing = {str(code) for code in server.ErrorCode} - set(errors.BY_CODE)
    assert not missing, f"trainq/errors.py has no type for the server's codes {sorted(missing)}"
    for code, cls in errors.BY_CODE.items():
        assert cls.code_name == code and issubclass(cls, trainq.ApiError)
        assert getattr(trainq, cls.__name__) is cls  # exported by the package too


def _subclasses(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *_subclasses(sub))]


def test_the_server_exceptions_and_the_client_types_agree() -> None:
    """A server error's client type has its name, and 429s share a base as on the server."""
    for exc in _subclasses(server.TrainqError):
        cls = errors.BY_CODE[str(exc.code)]
        assert issubclass(cls, errors.TooManyRequests) == (exc.status == 429), exc
    # Busy and StoreUnavailable are the server's own kinds of 503 unavailable: one client type.
    names = {c.__name__ for c in _subclasses(server.TrainqError)} - {"Busy", "StoreUnavailable"}
    assert names <= {c.__name__ for c in _subclasses(errors.ApiError)}


@pytest.mark.parametrize("code", sorted(errors.BY_CODE))
def test_of_builds_the_type_of_the_code(code: str) -> None:
    error = trainq.ApiError.of(418, code, "a message", {"field": "x"})
    assert type(error) is errors.BY_CODE[code]
    assert (error.status, error.code, error.message, error.details) == (
        418, code, "a message", {"field": "x"},
    )  # fmt: skip
    assert error.retry_after is None
    assert str(error) == f"418 {code}: a message"


def test_an_unknown_code_is_an_api_error() -> None:
    error = trainq.ApiError.of(502, "http_error", "Bad Gateway", {})
    assert type(error) is trainq.ApiError and error.status == 502


def test_retry_after_comes_from_the_details_or_the_header() -> None:
    busy = trainq.ApiError.of(503, "unavailable", "busy", {"retry_after": 2, "limit": 6})
    assert isinstance(busy, trainq.Unavailable) and busy.retry_after == 2.0
    limited = trainq.ApiError.of(429, "rate_limited", "slow down", {}, "7")
    assert isinstance(limited, trainq.RateLimited) and isinstance(limited, trainq.TooManyRequests)
    assert limited.retry_after == 7.0
    dated = trainq.ApiError.of(429, "quota_exceeded", "full", {}, "Wed, 21 Oct 2015 07:28:00 GMT")
    assert isinstance(dated, trainq.QuotaExceeded) and dated.retry_after is None
