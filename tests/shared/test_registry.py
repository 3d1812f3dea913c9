"""The registry's transactions on SQLite and PostgreSQL: versions numbered per model from
succeeded jobs only, aliases moved by one upsert, a version an alias holds kept."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from shared.commands.database import migrate
from shared.db import session_scope
from shared.errors import Conflict, InvalidInput, NotFound
from shared.models import Artifact, Job, JobStatus, User
from shared.registry import queries, service
from tests.conftest import make_user
from tests.support import postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        db = f"sqlite:///{tmp_path / 'r.db'}"
        migrate(db)
        yield db
    else:
        with postgres_database() as db:
            migrate(db)
            yield db


def fake_job(url: str, owner_id: int, status: JobStatus = JobStatus.succeeded) -> str:
    """A job row with a model file's record (no file: enough for the registry, not predict)."""
    with session_scope(url) as s:
        job = Job(owner_id=owner_id, name="j", spec={}, status=status, epochs_total=1,
                  epochs_done=1, test_metrics={"accuracy": 0.9},
                  provenance={"seed": 3})  # fmt: skip
        s.add(job)
        s.flush()
        s.add(Artifact(job_id=job.id, format="keras", path=f"{job.id}/model.keras",
                       size_bytes=1, sha256="0" * 64))  # fmt: skip
        return job.id


def _user(s, uid: int) -> User:  # type: ignore[no-untyped-def]
    return s.scalars(select(User).where(User.id == uid)).one()


def test_versions_aliases_and_what_cannot_be_deleted(url: str) -> None:
    alice, _ = make_user(url, "alice")
    bob, _ = make_user(url, "bob")
    first, second = fake_job(url, alice), fake_job(url, alice)
    running, bobs = fake_job(url, alice, JobStatus.running), fake_job(url, bob)
    with session_scope(url) as s:
        a = _user(s, alice)
        assert service.register(s, a, "digits", first).version == 1
        assert service.register(s, a, "digits", second).version == 2
        with pytest.raises(Conflict):
            service.register(s, a, "digits", running)
        with pytest.raises(NotFound):
            service.register(s, a, "digits", bobs)
        with pytest.raises(InvalidInput):
            service.register(s, a, "no/slash", first)
        service.set_alias(s, a, "digits", "champion", 1)
    with session_scope(url) as s:
        assert queries.resolve(s, alice, "digits").job_id == second  # the latest
        assert queries.resolve(s, alice, "digits", version=1).job_id == first
        assert queries.resolve(s, alice, "digits", alias="champion").job_id == first
        with pytest.raises(NotFound):
            queries.resolve(s, bob, "digits")  # names are per user
        service.set_alias(s, _user(s, alice), "digits", "champion", 2)  # moved in place
    with session_scope(url) as s:
        a = _user(s, alice)
        assert queries.resolve(s, alice, "digits", alias="champion").job_id == second
        assert queries.detail(s, alice, "digits").aliases == {"champion": 2}
        with pytest.raises(Conflict, match="champion"):
            service.delete_version(s, a, "digits", 2)
        service.delete_version(s, a, "digits", 1)
        with pytest.raises(InvalidInput):
            service.set_alias(s, a, "digits", "3", 2)  # reads as a version
    with session_scope(url) as s:
        a = _user(s, alice)
        assert service.register(s, a, "digits", first).version == 3  # 1 is not given again
        service.delete_alias(s, a, "digits", "champion")
        service.delete_version(s, a, "digits", 2)
        assert [(m.name, n, latest) for m, n, latest in queries.list_models(s, alice)] == [
            ("digits", 1, 3)
        ]
        service.delete_model(s, a, "digits")
    with session_scope(url) as s:
        assert queries.list_models(s, alice) == []
        with pytest.raises(NotFound):
            queries.resolve(s, alice, "digits", alias="champion")


def test_registrations_at_once_number_each_version_once(url: str) -> None:
    alice, _ = make_user(url, "alice")
    jobs = [fake_job(url, alice) for _ in range(6)]
    numbers: list[int] = []
    errors: list[BaseException] = []

    def register(job_id: str) -> None:
        try:
            with session_scope(url) as s:  # the first ones race to make the model too
                numbers.append(service.register(s, _user(s, alice), "raced", job_id).version)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(numbers) == [1, 2, 3, 4, 5, 6]
    with session_scope(url) as s:
        assert [m.name for m, *_ in queries.list_models(s, alice)] == ["raced"]
