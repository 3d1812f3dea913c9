"""What a training process runs on: the versions of Python and the libraries that train,
TensorFlow's thread counts, the host (recorded in each job's provenance)."""

from __future__ import annotations

import platform
import socket
from importlib.metadata import PackageNotFoundError, version
from typing import Any


def _trainq_version() -> str:
    try:
        return version("trainq")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def describe() -> dict[str, Any]:
    """This process's versions, threads and host, as a job's provenance records them."""
    import keras
    import numpy as np
    import tensorflow as tf

    return {
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
            "trainq": _trainq_version(),
        },
        # 0: TensorFlow's own choice (all the cores); set by the worker (TRAINQ_TF_THREADS).
        "threads": {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        },
        "host": socket.gethostname(),
    }
