"""A check process (``shared.ml.check_pool`` starts it): limits itself, loads Keras, then
answers one submit check per JSON line on stdin, one JSON line on stdout each."""

from __future__ import annotations

import json
import os
import resource
import sys
from typing import Any

from shared.errors import InvalidSpec
from shared.ml import submit_check
from shared.ml.check_pool import ADDRESS_SPACE_SLACK_MB


def serve() -> None:
    """The check process: limits itself, loads Keras, then answers one check per line."""
    memory = int(os.environ.get("TRAINQ_CHECK_MEMORY_MB", "6144"))
    limit = (memory + ADDRESS_SPACE_SLACK_MB) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # The answers go to the pipe the API reads; anything Keras or TensorFlow prints, to stderr.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    submit_check.warm_up(in_process=True)
    answers.write(b"ready\n")
    answers.flush()
    for line in sys.stdin.buffer:
        replace = False
        try:
            submit_check.run_request(json.loads(line))
            answer: dict[str, Any] = {"ok": True}
        except InvalidSpec as exc:
            answer = {"error": {"message": exc.message, "details": exc.details}}
        except MemoryError:
            replace = True
            answer = {"limit": "memory", "replace": True, "message": (
                f"building it took more than the {memory} MB of memory this server gives "
                "one check")}  # fmt: skip
        except Exception as exc:
            answer = {"error": {"message": f"model: {type(exc).__name__}: {exc}"[:2000],
                                "details": {"field": "model"}}}  # fmt: skip
        answers.write(json.dumps(answer).encode() + b"\n")
        answers.flush()
        if replace:
            return


if __name__ == "__main__":
    serve()
