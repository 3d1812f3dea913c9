"""Bearer-token authentication for the API."""

from __future__ import annotations

from flask import g, request

from shared.auth import authenticate
from shared.errors import Unauthorized
from shared.models import User
from web.extensions import db


def current_user() -> User:
    """The user the request's bearer token belongs to; 401 without a valid one."""
    if "user" in g:
        return g.user
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthorized("missing Authorization header; send 'Authorization: Bearer <token>'")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("malformed Authorization header; send 'Authorization: Bearer <token>'")
    g.user = authenticate(db(), token.strip())
    return g.user
