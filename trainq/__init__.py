"""trainq's light client: the Python SDK and the `trainq` command (no TensorFlow needed)."""

from trainq.client import ApiError, Client

__all__ = ["ApiError", "Client"]
__version__ = "0.1.0"
