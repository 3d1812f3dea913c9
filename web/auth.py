"""Bearer-token authentication for the API."""

from __future__ import annotations

from flask import g, request

from shared.auth import authenticate_token
from shared.errors import Unauthorized
from shared.models import ApiToken, User
from web.extensions import db


def bearer() -> str:
    """The token the request's Authorization header carries (not yet checked); 401 without one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthorized("missing Authorization header; send 'Authorization: Bearer <token>'")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("malformed Authorization header; send 'Authorization: Bearer <token>'")
    return token.strip()


def current_token() -> ApiToken:
    """The live token the request carries (its user at .user); 401 without a valid one."""
    if "token" in g:
        return g.token
    g.token = authenticate_token(db(), bearer())
    return g.token


def current_user() -> User:
    """The user the request's bearer token belongs to; 401 without a valid one."""
    return current_token().user
