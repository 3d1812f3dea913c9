"""Security headers on every answer: the app's (``init_app``), the status cache's fast path and
gunicorn's own error answers (``web/gunicorn_conf.py``) all take them from ``headers``.

- ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, ``Referrer-Policy:
  no-referrer`` everywhere;
- ``Cache-Control: no-store`` on every answer to a request with a token (job details,
  predictions, models, event streams: nobody else's to keep), and on the rest unless the route
  set its own (static files);
- a Content-Security-Policy: the API's answers load nothing (``default-src 'none'``); the
  dashboard and the API docs page load their scripts, styles and data from this origin only
  (no inline script: their start-up code is a file of its own).
"""

from __future__ import annotations

from flask import Flask, Response, request

API_CSP = "default-src 'none'; frame-ancestors 'none'"
# The pages' own files; their images include the data: URIs of swagger-ui's and uPlot's CSS,
# and swagger-ui's React sets style attributes (style-src-attr).
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
COMMON = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)


def headers(content_type: str) -> list[tuple[str, str]]:
    """The security headers of an answer of this content type (Cache-Control apart)."""
    csp = PAGE_CSP if content_type.startswith("text/html") else API_CSP
    return [*COMMON, ("Content-Security-Policy", csp)]


def json_headers() -> list[tuple[str, str]]:
    """Every header a JSON answer has besides its length: type, security, no-store."""
    return [
        ("Content-Type", "application/json"),
        *headers("application/json"),
        ("Cache-Control", "no-store"),
    ]


def init_app(app: Flask) -> None:
    """Put the headers on every answer of the app."""

    @app.after_request
    def _secure(response: Response) -> Response:
        for name, value in headers(response.mimetype or ""):
            response.headers.setdefault(name, value)
        if "Authorization" in request.headers:  # the caller's own data, downloads included
            response.headers["Cache-Control"] = "no-store"
        else:
            response.headers.setdefault("Cache-Control", "no-store")
        return response
