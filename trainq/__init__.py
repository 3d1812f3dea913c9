"""trainq's light client: the Python SDK and the `trainq` command (no TensorFlow needed)."""

from trainq.client import (
    ApiError,
    BadRequest,
    Client,
    Conflict,
    DatasetUnavailable,
    InvalidInput,
    InvalidSpec,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)

__all__ = [
    "ApiError", "BadRequest", "Client", "Conflict", "DatasetUnavailable", "InvalidInput",
    "InvalidSpec", "NotFound", "PayloadTooLarge", "Unauthorized",
]  # fmt: skip
__version__ = "0.1.0"
