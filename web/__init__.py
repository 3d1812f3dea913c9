"""The HTTP API: create_app() builds it; each resource is a blueprint."""

from __future__ import annotations

import logging

from flask import Flask

from shared.settings import Settings, get_settings
from web import errors, extensions
from web.datasets import bp as datasets_bp
from web.health import bp as health_bp
from web.jobs import bp as jobs_bp


def create_app(settings: Settings | None = None) -> Flask:
    """The Flask app for the given settings (by default, the environment's)."""
    settings = settings or get_settings()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    extensions.init_app(app, settings)
    errors.init_app(app)
    app.register_blueprint(health_bp)
    app.register_blueprint(jobs_bp, url_prefix="/api/v1/jobs")
    app.register_blueprint(datasets_bp, url_prefix="/api/v1/datasets")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return app
