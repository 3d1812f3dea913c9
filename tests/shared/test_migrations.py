"""The Alembic migrations create exactly the schema the ORM models describe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from shared.commands.database import migrate
from shared.models import Base
from tests.support import postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
    else:
        with postgres_database() as url:
            yield url


def test_migrations_match_models(empty_db: str) -> None:
    migrate(empty_db)
    engine = create_engine(empty_db)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"
    assert {"users", "api_tokens", "jobs", "epochs", "artifacts"} <= tables


def test_downgrade_removes_everything(empty_db: str) -> None:
    migrate(empty_db)
    migrate(empty_db, "base")
    engine = create_engine(empty_db)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()
    assert tables == set()
