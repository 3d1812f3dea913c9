"""The WSGI entry point: `gunicorn web.wsgi:app`.

gunicorn imports this in each worker process, never in its master (no ``--preload``). As it
starts, each worker warms its submit check in the background: it starts its check processes
and waits until they have loaded Keras and checked a small spec (with ``TRAINQ_CHECK_PROCESSES``
0, it does so itself), so that the first submit it serves does not wait seconds for what Keras
and TensorFlow set up on first use. A request that comes sooner waits for the warm-up under way.
"""

import logging
import threading

from shared.ml import submit_check
from web import create_app


def _warm_up() -> None:
    try:
        submit_check.warm_up()
    except Exception:  # the first real submit check then pays for it, nothing else changes
        logging.getLogger(__name__).exception("could not warm up the submit check")


app = create_app()
threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()
