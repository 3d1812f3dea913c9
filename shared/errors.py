"""The one error type of the service; the web turns it into the one JSON error shape."""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(enum.StrEnum):
    """Machine-readable error codes shared by the API, the SDK and the CLI."""

    bad_request = "bad_request"
    invalid_spec = "invalid_spec"
    invalid_input = "invalid_input"
    unauthorized = "unauthorized"
    not_found = "not_found"
    method_not_allowed = "method_not_allowed"
    conflict = "conflict"
    payload_too_large = "payload_too_large"
    dataset_unavailable = "dataset_unavailable"
    quota_exceeded = "quota_exceeded"
    rate_limited = "rate_limited"
    unavailable = "unavailable"
    internal = "internal"


class TrainqError(Exception):
    """An error a caller can act on: an HTTP status, a code, a message and details."""

    status = 400
    code = ErrorCode.bad_request

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = dict(details or {})
        # Seconds until trying again is worth it: in `details`, and the web's Retry-After header.
        self.retry_after = retry_after
        if retry_after is not None:
            self.details["retry_after"] = retry_after


class BadRequest(TrainqError):
    """The request cannot be read (malformed JSON, wrong content type)."""


class InvalidSpec(TrainqError):
    """A job spec that fails validation."""

    status = 422
    code = ErrorCode.invalid_spec


class InvalidInput(TrainqError):
    """Request data that is well-formed but unusable (e.g. wrong shape for predict)."""

    status = 422
    code = ErrorCode.invalid_input


class PayloadTooLarge(TrainqError):
    """A body over its limit, refused as it streams in."""

    status = 413
    code = ErrorCode.payload_too_large


class DatasetUnavailable(TrainqError):
    """A dataset that this server does not have."""

    status = 422
    code = ErrorCode.dataset_unavailable


class Unauthorized(TrainqError):
    """No token, or a token that is not valid."""

    status = 401
    code = ErrorCode.unauthorized


class NotFound(TrainqError):
    """No such resource, or one that belongs to somebody else."""

    status = 404
    code = ErrorCode.not_found


class Conflict(TrainqError):
    """The resource is not in a state that allows the request."""

    status = 409
    code = ErrorCode.conflict


class TooManyRequests(TrainqError):
    """Over a limit that time will lift; the web sends `Retry-After: retry_after` seconds."""

    status = 429
    code = ErrorCode.rate_limited

    def __init__(
        self, message: str, *, retry_after: int, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details, retry_after=retry_after)


class RateLimited(TooManyRequests):
    """Too many submissions in the rate window."""


class QuotaExceeded(TooManyRequests):
    """Too many jobs waiting already."""

    code = ErrorCode.quota_exceeded


class Busy(TrainqError):
    """The server is at its capacity for this kind of request (not the caller's limit); the
    caller passes ``retry_after``."""

    status = 503
    code = ErrorCode.unavailable


class Unavailable(TrainqError):
    """A part the server needs (its database) does not answer for now: nothing the caller did
    wrong; ``retry_after`` says when trying again is worth it."""

    status = 503
    code = ErrorCode.unavailable

    def __init__(
        self, message: str, *, retry_after: int, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details, retry_after=retry_after)
