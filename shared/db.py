"""The SQLAlchemy engine and sessions: one session per request or unit of work.

The core has one transaction convention: a function that is a transaction of its own takes
``db``, the sessionmaker (``Sessions``) of trainq's database, and opens it with ``transaction``;
a function that is part of its caller's transaction takes that ``Session``. A database URL
becomes a sessionmaker in one place, ``sessions(url)``, whose sessions announce the changes
they commit (``shared.stamps``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from shared import stamps

Sessions = sessionmaker[Session]
_engines: dict[str, Engine] = {}
_factories: dict[str, Sessions] = {}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the web and the workers read while one of them writes; the timeout makes
    # concurrent writers wait instead of failing with "database is locked".
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def get_engine(url: str) -> Engine:
    """The engine for a database URL, created once per process."""
    engine = _engines.get(url)
    if engine is None:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True)
        _engines[url] = engine
    return engine


def sessions(url: str) -> Sessions:
    """trainq's sessionmaker for a database URL, made once per process; its sessions announce
    what they commit."""
    factory = _factories.get(url)
    if factory is None:
        factory = sessionmaker(bind=get_engine(url), expire_on_commit=False)
        stamps.bind(factory)
        _factories[url] = factory
    return factory


@contextmanager
def transaction(db: Sessions) -> Iterator[Session]:
    """A transaction: commits on success, rolls back on error, always closes."""
    session = db()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def session_scope(url: str) -> AbstractContextManager[Session]:
    """A transaction on the database at this URL (for scripts and tests; the core takes
    ``Sessions``)."""
    return transaction(sessions(url))


def dispose_all() -> None:
    """Drop pooled connections, e.g. in a freshly forked process."""
    for engine in _engines.values():
        engine.dispose(close=False)
