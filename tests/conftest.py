"""Shared fixtures: a private Redis, throwaway databases, the API in-process and for real."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shared.auth import create_user, issue_token
from shared.commands.database import migrate
from shared.db import session_scope
from shared.settings import Settings
from tests.support import postgres_database, redis_server
from web import create_app

try:
    from xdist.scheduler import LoadGroupScheduling
except ImportError:  # pytest-xdist is in the dev extras; without it the tests run one at a time
    LoadGroupScheduling = None

if TYPE_CHECKING:
    from tests.live import LiveStacks

# The xdist group of every test that uses the shared services: one worker runs them all, so each
# service starts once (see the scheduler below).
LIVE_GROUP = "live-stacks"
UNITS_DIR = "trainq_xdist_units"  # key of the workers' input: where they write their work units


@pytest.hookimpl(tryfirst=True)  # before -m deselects and before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "live_stacks" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(LIVE_GROUP))
    folder = getattr(config, "workerinput", {}).get(UNITS_DIR)
    if folder:  # an xdist worker under the scheduler below: each test's unit, and if it is slow
        units = {}
        for item in items:
            groups = {str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                      for m in item.iter_markers("xdist_group")}  # fmt: skip
            unit = "_".join(sorted(groups)) if groups else item.nodeid.split("::", 1)[0]
            units[item.nodeid] = (unit, item.get_closest_marker("slow") is not None)
        path = Path(folder) / f"{config.workerinput['workerid']}.json"  # type: ignore[attr-defined]
        path.write_text(json.dumps(units))


# `pytest -n 2 --dist loadgroup`, as `make test` runs it, hands out work in units: the tests of one
# module, or of one xdist_group, all go to the same worker (so a module's or a group's fixtures
# start once), the heaviest units first (so no long one is left for the end).
#
# pytest-xdist 3.8's own loadgroup would send each ungrouped test on its own, and it learns a
# test's xdist_group from the worker appending it to the test's node id, which pytest 9.2 no
# longer lets a plugin change: the groups are silently lost (pytest-dev/pytest-xdist#1386). So each
# worker writes the units it collected to a file, and this scheduler reads them there.
if LoadGroupScheduling is not None:

    class _Units(LoadGroupScheduling):  # type: ignore[misc,valid-type]
        """--dist loadgroup by module and xdist_group, slow units first."""

        def __init__(self, config: pytest.Config, log: Any = None) -> None:
            super().__init__(config, log)
            self._folder = Path(config.stash[_units_dir])
            self._units: dict[str, tuple[str, bool]] | None = None
            self._ordered = False

        def _unit(self, nodeid: str) -> tuple[str, bool] | None:
            if self._units is None:  # every worker has collected by the time this is asked
                self._units = {}
                for path in sorted(self._folder.glob("*.json")):
                    self._units.update(
                        {k: tuple(v) for k, v in json.loads(path.read_text()).items()}
                    )
            return self._units.get(nodeid)

        def _split_scope(self, nodeid: str) -> str:
            unit = self._unit(nodeid)
            return unit[0] if unit else super()._split_scope(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            if not self._ordered:  # the first hand-out: order the queue, heaviest first
                self._ordered = True

                def weight(nodeids: dict[str, bool]) -> float:  # a slow test ~ 10 s, others less
                    return sum(10 if (self._unit(n) or ("", False))[1] else 0.2 for n in nodeids)

                queue = sorted(self.workqueue.items(), key=lambda unit: -weight(unit[1]))
                self.workqueue.clear()
                self.workqueue.update(queue)
            super()._assign_work_unit(node)

    _units_dir = pytest.StashKey[str]()

    def _folder(config: pytest.Config) -> str:
        if _units_dir not in config.stash:
            config.stash[_units_dir] = tempfile.mkdtemp(prefix="trainq-xdist-units-")
        return config.stash[_units_dir]

    def pytest_configure_node(node: Any) -> None:  # before the scheduler is made
        if node.config.getvalue("dist") == "loadgroup":
            node.workerinput[UNITS_DIR] = _folder(node.config)

    def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
        if config.getvalue("dist") != "loadgroup":
            return None
        _folder(config)
        return _Units(config, log)

    def pytest_unconfigure(config: pytest.Config) -> None:
        if _units_dir in config.stash:
            shutil.rmtree(config.stash[_units_dir], ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of the test session's own."""
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session", autouse=True)
def _no_shared_redis(redis_url: str) -> Iterator[None]:
    """Code that falls back to the settings' Redis (events, stamps) uses the private one too,
    never the machine's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRAINQ_REDIS_URL", redis_url)
        yield


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated, empty SQLite database."""
    url = f"sqlite:///{tmp_path / 'trainq.db'}"
    migrate(url)
    return url


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str, redis_url: str) -> Settings:
    """Settings for an in-process app on SQLite and the private Redis; no worker runs to
    announce its slots, so the dispatcher counts a fixed one."""
    return Settings(
        var_dir=tmp_path, database_url=sqlite_url, redis_url=redis_url,
        artifacts=tmp_path / "artifacts", worker_slots=1,
    )  # fmt: skip


@pytest.fixture
def app(settings: Settings) -> Flask:
    """The API in this process."""
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for the in-process API."""
    return app.test_client()


def make_user(url: str, name: str) -> tuple[int, str]:
    """Create a user and a token for them."""
    with session_scope(url) as s:
        user = create_user(s, name)
        return user.id, issue_token(s, user)


@pytest.fixture
def alice(sqlite_url: str) -> dict[str, Any]:
    """A user with a token, and the header that carries it."""
    uid, token = make_user(sqlite_url, "alice")
    return {"id": uid, "token": token, "headers": {"Authorization": f"Bearer {token}"}}


@pytest.fixture
def bob(sqlite_url: str) -> dict[str, Any]:
    """A second user."""
    uid, token = make_user(sqlite_url, "bob")
    return {"id": uid, "token": token, "headers": {"Authorization": f"Bearer {token}"}}


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throwaway PostgreSQL database for the session."""
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def live_stacks(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[LiveStacks]:
    """The real service with default settings, on SQLite and on PostgreSQL, shared by every
    module that asks for it (tests/live.py): `live_stacks.get("sqlite")`."""
    from tests.live import LiveStacks  # tests.live imports this module

    stacks = LiveStacks(tmp_path_factory.mktemp, redis_url)
    try:
        yield stacks
    finally:
        stacks.close()
