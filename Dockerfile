# One image for every trainq service (web, worker, periodic); docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    TRAINQ_VAR_DIR=/var/lib/trainq \
    TRAINQ_ARTIFACTS=/var/lib/trainq/artifacts \
    PYTHONPATH=/app

WORKDIR /app
COPY pyproject.toml constraints.txt README.md alembic.ini ./
COPY shared ./shared
COPY web ./web
COPY worker ./worker
COPY trainq ./trainq
COPY migrations ./migrations
COPY examples ./examples
# The package installs the client (trainq) with the service's dependencies at the versions of
# constraints.txt; the service's own packages (shared, web, worker) run from /app (PYTHONPATH).
RUN pip install -c constraints.txt '.[server]' \
    && rm -rf build trainq.egg-info \
    && useradd --system --home-dir /var/lib/trainq --create-home trainq
USER trainq
EXPOSE 8000
# web/gunicorn_conf.py: the worker class, timeout and request limits, and gunicorn's own error
# answers in the API's error shape, as `trainq up` runs it.
CMD ["gunicorn", "-c", "/app/web/gunicorn_conf.py", "web.wsgi:app", "--bind", "0.0.0.0:8000", \
     "--workers", "2", "--threads", "8"]
