"""The SQLAlchemy engine and sessions: one session per request or unit of work.

The core has one transaction convention: a function that is a transaction of its own takes
``db``, the sessionmaker (``Sessions``) of trainq's database, and opens it with ``transaction``;
a function that is part of its caller's transaction takes that ``Session``. A database URL
becomes a sessionmaker in one place, ``sessions(url)``, whose sessions announce the changes
they commit (``shared.stamps``).

No caller waits forever for PostgreSQL: a connection attempt gives up after
``CONNECT_TIMEOUT_SECONDS``, a statement after ``STATEMENT_TIMEOUT_MS``, a wait for a pooled
connection after ``POOL_TIMEOUT_SECONDS``, and a server that vanished without closing its
connections is noticed by TCP keepalives. ``unavailable(exc)`` tells such an error (worth
waiting out) from a wrong query; ``patiently`` waits one out, for a bounded time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from shared import stamps

log = logging.getLogger(__name__)

Sessions = sessionmaker[Session]
T = TypeVar("T")

CONNECT_TIMEOUT_SECONDS = 5
STATEMENT_TIMEOUT_MS = 30_000
POOL_TIMEOUT_SECONDS = 10
# libpq's TCP keepalives: a server gone without a word is noticed within about 25 s.
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
               "keepalives_count": 3}  # fmt: skip
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
        elif url.startswith("postgresql"):
            engine = create_engine(
                url,
                pool_pre_ping=True,
                pool_timeout=POOL_TIMEOUT_SECONDS,
                connect_args={
                    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
                    "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                    **_KEEPALIVES,
                },
            )
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_timeout=POOL_TIMEOUT_SECONDS)
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


# SQLite's OperationalError also says that the schema is wrong: that is no outage.
_SQLITE_MISTAKES = ("no such ", "syntax error", "has no column")


def unavailable(exc: BaseException) -> bool:
    """Whether an error says the database cannot be reached or did not answer in time (an
    outage, a restart, a statement or pool timeout: worth trying again later) rather than that
    the query or the data is wrong."""
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection came free in time
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.OperationalError):
        message = str(exc.orig).lower()
        return not any(mistake in message for mistake in _SQLITE_MISTAKES)
    return isinstance(exc, sa_exc.InterfaceError)


def describe(exc: BaseException) -> str:
    """An unavailable database's error on one short line (the driver's first line)."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [""])[0]
    return f"{type(orig).__name__}: {first}"[:300]


def patiently(call: Callable[[], T], *, within: float, what: str) -> T:
    """``call()``, tried again while the database is unavailable, with a backoff from 0.1 s to
    1 s, for at most ``within`` seconds; then its last error is raised. Any other error is
    raised at once. ``what`` names the call in the log."""
    deadline = time.monotonic() + within
    pause, waited = 0.1, False
    while True:
        try:
            result = call()
        except Exception as exc:
            if not unavailable(exc) or time.monotonic() + pause > deadline:
                raise
            if not waited:
                log.warning(
                    "%s: the database is unavailable (%s); trying again for up to %.0f s",
                    what, describe(exc), within,
                )  # fmt: skip
                waited = True
            time.sleep(pause)
            pause = min(2 * pause, 1.0)
            continue
        if waited:
            log.info("%s: the database answers again", what)
        return result


def server_started_at(db: Sessions) -> datetime | None:
    """When the database server last started (PostgreSQL), else None: a restart is an outage
    even if nobody was there to see it."""
    with transaction(db) as s:
        if s.get_bind().dialect.name != "postgresql":
            return None
        started: datetime | None = s.scalar(text("SELECT pg_postmaster_start_time()"))
        return started
