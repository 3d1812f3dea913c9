"""The WSGI entry point: `gunicorn web.wsgi:app`.

gunicorn imports this in each worker process, never in its master (no ``--preload``), so each
worker loads Keras and checks a small spec in the background as it starts: the first submit
check it serves then does not wait seconds for what Keras and TensorFlow set up on first use.
A request that comes sooner waits for the import already under way.
"""

import logging
import threading

from shared.ml import submit_check
from web import create_app


def _load_keras() -> None:
    try:
        submit_check.warm_up()
    except Exception:  # the first real submit check then pays for it, nothing else changes
        logging.getLogger(__name__).exception("could not warm up Keras")


app = create_app()
threading.Thread(target=_load_keras, name="load-keras", daemon=True).start()
