"""The HTTP API: create_app() builds it; each resource is a blueprint."""

from __future__ import annotations

import logging

from flask import Flask

from shared import stamps
from shared.settings import Settings, get_settings
from web import errors, extensions, metrics, security
from web.batch_predictions import bp as batch_predictions_bp
from web.compare import bp as compare_bp
from web.dashboard import bp as dashboard_bp
from web.datasets import SpoolingRequest
from web.datasets import bp as datasets_bp
from web.events import bp as events_bp
from web.health import bp as health_bp
from web.jobs import bp as jobs_bp
from web.me import bp as me_bp
from web.models_registry import bp as models_bp
from web.openapi import bp as openapi_bp
from web.protocols import tf_bp, v2_bp
from web.status_cache import FastPath
from web.sweeps import bp as sweeps_bp
from web.tensorboard import bp as tensorboard_bp
from web.uploads import bp as uploads_bp
from web.webhooks import bp as webhooks_bp


def create_app(settings: Settings | None = None) -> Flask:
    """The Flask app for the given settings (by default, the environment's)."""
    settings = settings or get_settings()
    app = Flask(__name__)
    app.request_class = SpoolingRequest
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    extensions.init_app(app, settings)
    stamps.configure(settings.redis_url)
    errors.init_app(app)
    security.init_app(app)
    app.register_blueprint(health_bp)
    app.register_blueprint(jobs_bp, url_prefix="/api/v1/jobs")
    app.register_blueprint(me_bp, url_prefix="/api/v1/me")
    app.register_blueprint(events_bp, url_prefix="/api/v1/jobs")
    app.register_blueprint(tensorboard_bp, url_prefix="/api/v1/jobs")
    app.register_blueprint(openapi_bp)
    metrics.init_app(app)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(datasets_bp, url_prefix="/api/v1/datasets")
    app.register_blueprint(uploads_bp, url_prefix="/api/v1/uploads")
    app.register_blueprint(sweeps_bp, url_prefix="/api/v1/sweeps")
    app.register_blueprint(models_bp, url_prefix="/api/v1/models")
    app.register_blueprint(webhooks_bp, url_prefix="/api/v1/webhooks")
    app.register_blueprint(batch_predictions_bp, url_prefix="/api/v1/batch-predictions")
    app.register_blueprint(compare_bp, url_prefix="/api/v1/compare")
    app.register_blueprint(tf_bp)  # TF Serving's REST API: /v1/models/...
    app.register_blueprint(v2_bp)  # the Open Inference Protocol (KServe v2): /v2/...
    state = app.extensions["trainq"]
    app.wsgi_app = FastPath(app.wsgi_app, state["status"], app.json.dumps)  # type: ignore[method-assign]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return app
