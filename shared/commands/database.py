"""The database of the service for its commands: migrate it, create users in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The checkout (or /app in the image): alembic.ini and migrations/ are there.
ROOT = Path(__file__).resolve().parents[2]


def service_settings() -> Any:
    """The service's settings; a missing dependency of the service is one clear line."""
    try:
        from shared.settings import get_settings
    except ImportError as exc:  # the server's parts without their dependencies
        raise SystemExit(
            f"this command runs the service and needs its dependencies ({exc.name} is missing): "
            "run `make install` in a checkout of trainq, or use `make up`"
        ) from exc
    return get_settings()


def migrate(url: str | None = None, revision: str = "head") -> None:
    """Bring the database schema to a migration (the newest by default)."""
    from alembic import command
    from alembic.config import Config

    if url is None:
        settings = service_settings()
        url = settings.database_url
        if url.startswith("sqlite"):
            settings.var_dir.mkdir(parents=True, exist_ok=True)
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if revision == "base":
        command.downgrade(config, "base")
    else:
        command.upgrade(config, revision)


def create_user(name: str, admin: bool = False) -> str:
    """Create a user and return a new token for them."""
    from shared.auth import create_user as add_user
    from shared.auth import issue_token
    from shared.db import session_scope
    from shared.models import Role

    settings = service_settings()
    migrate()
    with session_scope(settings.database_url) as session:
        user = add_user(session, name, Role.admin if admin else Role.user)
        return issue_token(session, user)


def ensure_first_user() -> tuple[str | None, Path]:
    """On first start: create an admin user and save the token where the CLI finds it."""
    from sqlalchemy import func, select

    from shared.db import session_scope
    from shared.models import User

    settings = service_settings()
    token_file: Path = settings.token_file
    with session_scope(settings.database_url) as session:
        has_users = (session.scalar(select(func.count()).select_from(User)) or 0) > 0
    if has_users:
        return None, token_file
    token = create_user("admin", admin=True)
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    return token, token_file
