"""The Celery worker: `celery -A worker worker` and `celery -A worker beat`."""

from shared.settings import get_settings
from worker import presence, warm  # noqa: F401  (announces the worker; readies each pool child)
from worker.celery_app import make_celery

app = make_celery(get_settings())

__all__ = ["app"]
