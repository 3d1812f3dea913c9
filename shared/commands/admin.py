"""Administrator commands run where the service runs: users and their API tokens.

They talk to the database directly (TRAINQ_DATABASE_URL); the database's modules are imported
when a command runs, not when `trainq` reads its command line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from shared.commands.database import migrate, service_settings


def _session() -> Any:
    from shared.db import session_scope

    settings = service_settings()
    migrate()
    return session_scope(settings.database_url)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "-"


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def users_create(name: str, admin: bool = False) -> int:
    """Create a user and print a first token for them."""
    from shared.commands.database import create_user

    print(create_user(name, admin=admin))
    return 0


def users_list() -> int:
    """Print every user with their role, state and live tokens."""
    from shared.auth import list_tokens, list_users, token_state

    with _session() as session:
        rows = []
        for user in list_users(session):
            live = sum(token_state(t) == "active" for t in list_tokens(session, user))
            state = "disabled" if user.disabled else "active"
            rows.append(
                (str(user.id), user.name, str(user.role), state, str(live), _when(user.created_at))
            )
    _table(("ID", "NAME", "ROLE", "STATE", "TOKENS", "CREATED"), rows)
    return 0


def users_disable(name: str, disabled: bool = True) -> int:
    """Disable a user (their tokens stop working at once), or enable them again."""
    from shared.auth import set_disabled

    with _session() as session:
        user = set_disabled(session, name, disabled)
        print(f"{user.name}: {'disabled' if user.disabled else 'enabled'}")
    return 0


def tokens_create(name: str, expires_in_days: float | None = None) -> int:
    """Print a new token for a user; it is shown once and stored only as a hash."""
    from shared.auth import get_user, issue_token
    from shared.errors import InvalidInput
    from shared.models import utcnow

    if expires_in_days is not None and not 0 < expires_in_days <= 36500:
        raise InvalidInput("--expires-in takes a number of days above 0")
    with _session() as session:
        user = get_user(session, name)
        expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
        token = issue_token(session, user, expires_at=expires)
    print(token)
    print(f"token for {user.name}, expires {_when(expires)}", file=sys.stderr)
    return 0


def tokens_list(name: str) -> int:
    """Print a user's tokens: id, prefix, state, creation and expiry (never the token)."""
    from shared.auth import get_user, list_tokens, token_state

    with _session() as session:
        rows = [
            (str(t.id), t.prefix, token_state(t), _when(t.created_at), _when(t.expires_at))
            for t in list_tokens(session, get_user(session, name))
        ]
    _table(("ID", "PREFIX", "STATE", "CREATED", "EXPIRES"), rows)
    return 0


def tokens_revoke(key: str) -> int:
    """Revoke a token by id, prefix or the whole token; it stops working at once."""
    from shared.auth import revoke_token

    with _session() as session:
        row = revoke_token(session, key)
        print(f"revoked token {row.id} ({row.prefix}) of {row.user.name}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run `trainq users|tokens ACTION`; an error a person can fix is one line and status 1."""
    from shared.errors import TrainqError

    commands: dict[str, Callable[[], int]] = {
        "users create": lambda: users_create(args.name, args.admin),
        "users list": users_list,
        "users disable": lambda: users_disable(args.name),
        "users enable": lambda: users_disable(args.name, disabled=False),
        "tokens create": lambda: tokens_create(args.user, args.expires_in),
        "tokens list": lambda: tokens_list(args.user),
        "tokens revoke": lambda: tokens_revoke(args.token),
    }
    try:
        return commands[f"{args.command} {args.action}"]()
    except TrainqError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
