"""trainq's light client: the Python SDK and the `trainq` command (no TensorFlow needed)."""

from trainq.client import Client
from trainq.errors import (
    ApiError,
    BadRequest,
    Conflict,
    DatasetUnavailable,
    InternalError,
    InvalidInput,
    InvalidSpec,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    RateLimited,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)

__all__ = [
    "ApiError", "BadRequest", "Client", "Conflict", "DatasetUnavailable", "InternalError",
    "InvalidInput", "InvalidSpec", "MethodNotAllowed", "NotFound", "PayloadTooLarge",
    "QuotaExceeded", "RateLimited", "TooManyRequests", "Unauthorized", "Unavailable",
]  # fmt: skip
__version__ = "0.1.0"
