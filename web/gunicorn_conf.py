"""gunicorn's settings for the API, the one config `trainq up`, the image and the tests start
gunicorn with (``gunicorn -c web/gunicorn_conf.py web.wsgi:app``; the command line adds where
it binds and how many workers and threads). gunicorn reads this file in its master as a file,
not as part of the ``web`` package, so the master imports none of the app.

What gunicorn answers itself, before the app sees a request (a request line or a header too
long, too many headers, a malformed request or chunk), it answers in the API's one error shape
(``{"error": {"code", "message", "details"}}``) with the API's security headers, and no answer
says ``Server: gunicorn``.
"""

from __future__ import annotations

import json
from typing import Any

import gunicorn.http.wsgi
import gunicorn.util

worker_class = "gthread"
timeout = 120
# gunicorn's defaults, stated: what it refuses with 414 and 431 itself.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190

_CODES = {413: "payload_too_large", 500: "internal", 503: "unavailable"}
_FALLBACK_HEADERS = [
    ("Content-Type", "application/json"),
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-store"),
]


def _headers() -> list[tuple[str, str]]:
    try:  # in a worker, the app (and with it web.security) is loaded already
        from web.security import json_headers

        return json_headers()
    except Exception:
        return _FALLBACK_HEADERS


def error_answer(status: int, reason: str, message: str) -> bytes:
    """gunicorn's own error answer, in the API's one error shape."""
    code = _CODES.get(status, "bad_request" if status < 500 else "internal")
    body = json.dumps(
        {"error": {"code": code, "message": message or reason, "details": {"status": status}}}
    ).encode()
    head = [f"HTTP/1.1 {status} {reason}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in _headers()]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _write_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    gunicorn.util.write_nonblock(sock, error_answer(status_int, reason, mesg))


_default_headers = gunicorn.http.wsgi.Response.default_headers


def _without_banner(self: Any) -> list[str]:
    return [h for h in _default_headers(self) if not h.startswith("Server:")]


# The worker's handle_error calls gunicorn.util.write_error: the JSON answer instead of HTML.
gunicorn.util.write_error = _write_error
gunicorn.http.wsgi.Response.default_headers = _without_banner
