"""Users and API tokens: tokens are random, shown once, and stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.errors import Conflict, InvalidInput, Unauthorized
from shared.models import ApiToken, Role, User, utcnow

TOKEN_PREFIX = "tq_"


def hash_token(token: str) -> str:
    """The stored form of a token (tokens are 256-bit random, so a plain hash suffices)."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session: Session, name: str, role: Role = Role.user) -> User:
    """Add a user; names are unique."""
    name = name.strip()
    if not name or len(name) > 64:
        raise InvalidInput("a user name must have 1 to 64 characters")
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise Conflict(f"a user named {name!r} already exists")
    user = User(name=name, role=role)
    session.add(user)
    session.flush()
    return user


def issue_token(session: Session, user: User, expires_at: datetime | None = None) -> str:
    """Create a token for the user and return it; only its hash is kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            user_id=user.id,
            token_hash=hash_token(token),
            prefix=token[:10],
            expires_at=expires_at,
        )
    )
    session.flush()
    return token


def authenticate(session: Session, token: str) -> User:
    """The user a bearer token belongs to, or Unauthorized."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None:
        raise Unauthorized("the token is not valid")
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise Unauthorized("the token has expired")
    if row.user.disabled:
        raise Unauthorized("this user is disabled")
    return row.user
