"""Users and API tokens: tokens are random, shown once, and stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from shared.errors import Conflict, InvalidInput, NotFound, Unauthorized
from shared.models import ApiToken, Role, User, utcnow

TOKEN_PREFIX = "tq_"
PREFIX_CHARS = 10  # what is kept in clear to tell tokens apart: "tq_" and 7 random characters


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
            prefix=token[:PREFIX_CHARS],
            expires_at=expires_at,
        )
    )
    session.flush()
    return token


def authenticate_token(session: Session, token: str) -> ApiToken:
    """The live token row for a bearer token (its user at .user), or Unauthorized."""
    row = session.scalar(
        select(ApiToken)
        .where(ApiToken.token_hash == hash_token(token))
        .options(joinedload(ApiToken.user))  # one query for the token and its user
    )
    if row is None or row.revoked_at is not None:
        raise Unauthorized("the token is not valid")
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise Unauthorized("the token has expired")
    if row.user.disabled:
        raise Unauthorized("this user is disabled")
    return row


def authenticate(session: Session, token: str) -> User:
    """The user a bearer token belongs to, or Unauthorized."""
    return authenticate_token(session, token).user


def token_state(row: ApiToken, now: datetime | None = None) -> str:
    """'active', 'expired' or 'revoked'."""
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= (now or utcnow()):
        return "expired"
    return "active"


def get_user(session: Session, name: str) -> User:
    """A user by name, or NotFound."""
    user = session.scalar(select(User).where(User.name == name.strip()))
    if user is None:
        raise NotFound(f"no user named {name!r}")
    return user


def list_users(session: Session) -> list[User]:
    """Every user, oldest first."""
    return list(session.scalars(select(User).order_by(User.id)))


def set_disabled(session: Session, name: str, disabled: bool = True) -> User:
    """Disable a user (every token stops working at once) or enable them again."""
    user = get_user(session, name)
    user.disabled = disabled
    session.flush()
    return user


def list_tokens(session: Session, user: User) -> list[ApiToken]:
    """A user's tokens, oldest first (revoked and expired ones included)."""
    return list(
        session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id))
    )


def find_token(session: Session, key: str) -> ApiToken:
    """A token by its id, its prefix as listed, or the whole token."""
    key = key.strip()
    if key.isdigit():
        rows = list(session.scalars(select(ApiToken).where(ApiToken.id == int(key))))
    elif len(key) > PREFIX_CHARS:
        rows = list(session.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(key))))
    else:
        rows = list(session.scalars(select(ApiToken).where(ApiToken.prefix == key)))
    if not rows:
        raise NotFound(f"no token {key!r}; give its id or prefix as `trainq tokens list` shows")
    if len(rows) > 1:
        raise Conflict(f"{len(rows)} tokens start with {key!r}; give the token's id instead")
    return rows[0]


def revoke_token(session: Session, key: str) -> ApiToken:
    """Revoke a token at once (revoking it again changes nothing)."""
    row = find_token(session, key)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return row
