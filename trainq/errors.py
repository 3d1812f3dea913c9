"""The API's errors as Python exceptions: one type for each error code the server can answer.

Every error the API returns has the one JSON shape ``{"error": {"code", "message",
"details"}}``; the SDK raises the type of its code (``ApiError`` itself for a code it does not
know), with ``.status``, ``.code``, ``.message``, ``.details`` and ``.retry_after``.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answered by the API, with its HTTP status and error code."""

    code_name = ""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any],
        retry_after: float | str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details
        # Seconds until trying again is worth it (the body's details, else Retry-After), if said.
        self.retry_after = _seconds(details.get("retry_after"), _seconds(retry_after, None))

    @staticmethod
    def of(
        status: int,
        code: str,
        message: str,
        details: dict[str, Any],
        retry_after: float | str | None = None,
    ) -> ApiError:
        """The typed error for the API's error code (ApiError itself for an unknown one);
        ``retry_after`` is the response's Retry-After header, if it had one."""
        return BY_CODE.get(code, ApiError)(status, code, message, details, retry_after)


def _seconds(value: Any, default: float | None) -> float | None:
    """A number of seconds (default for none, or for what is not a number, e.g. an HTTP date)."""
    try:
        return default if value is None else float(value)
    except (TypeError, ValueError):
        return default


class BadRequest(ApiError):
    """400 bad_request: the body could not be read (malformed JSON, wrong content type)."""

    code_name = "bad_request"


class Unauthorized(ApiError):
    """401 unauthorized: no token, or not a valid one."""

    code_name = "unauthorized"


class NotFound(ApiError):
    """404 not_found: no such job (or somebody else's)."""

    code_name = "not_found"


class MethodNotAllowed(ApiError):
    """405 method_not_allowed: the path does not take this HTTP method."""

    code_name = "method_not_allowed"


class Conflict(ApiError):
    """409 conflict: the job is not in a state that allows this (e.g. predict before success)."""

    code_name = "conflict"


class PayloadTooLarge(ApiError):
    """413 payload_too_large: the request body is over the server's limit."""

    code_name = "payload_too_large"


class InvalidSpec(ApiError):
    """422 invalid_spec: details["errors"] names each bad field."""

    code_name = "invalid_spec"


class InvalidInput(ApiError):
    """422 invalid_input: e.g. predict instances of the wrong shape."""

    code_name = "invalid_input"


class DatasetUnavailable(ApiError):
    """422 dataset_unavailable: unknown dataset, or its files are not on the server."""

    code_name = "dataset_unavailable"


class TooManyRequests(ApiError):
    """429: over one of the caller's limits, which time lifts (``retry_after`` seconds)."""


class RateLimited(TooManyRequests):
    """429 rate_limited: too many submissions in the server's rate window."""

    code_name = "rate_limited"


class QuotaExceeded(TooManyRequests):
    """429 quota_exceeded: too many of the caller's jobs are waiting already."""

    code_name = "quota_exceeded"


class Unavailable(ApiError):
    """503 unavailable: the server is at capacity for this; try again in ``retry_after`` s."""

    code_name = "unavailable"


class InternalError(ApiError):
    """500 internal: the server failed; the message says no more (its log does)."""

    code_name = "internal"


class CannotSend(ValueError):
    """What ``trainq.keras.remote_fit`` cannot send to the service (a layer or callback off its
    allow-lists, arrays of mismatched lengths or of Python objects...): raised before anything
    is uploaded."""


class JobFailed(RuntimeError):
    """A job that ``remote_fit`` waited for ended failed or cancelled; ``.job`` is its record."""

    def __init__(self, job: dict[str, Any]) -> None:
        reason = job.get("error") or "no reason given"
        super().__init__(f"job {job['id']} {job['status']}: {reason}")
        self.job = job


# The type of each error code (TooManyRequests has none of its own: it is the two 429s).
_TYPES: tuple[type[ApiError], ...] = (
    BadRequest, Unauthorized, NotFound, MethodNotAllowed, Conflict, PayloadTooLarge, InvalidSpec,
    InvalidInput, DatasetUnavailable, RateLimited, QuotaExceeded, Unavailable, InternalError,
)  # fmt: skip
BY_CODE: dict[str, type[ApiError]] = {cls.code_name: cls for cls in _TYPES}

__all__ = [
    "BY_CODE", "ApiError", "BadRequest", "CannotSend", "Conflict", "DatasetUnavailable",
    "InternalError", "InvalidInput", "InvalidSpec", "JobFailed", "MethodNotAllowed", "NotFound",
    "PayloadTooLarge", "QuotaExceeded", "RateLimited", "TooManyRequests", "Unauthorized",
    "Unavailable",
]  # fmt: skip
