"""Sweeps in-process: checked whole at submit (422 naming the path, nothing recorded), trials
as ordinary jobs with their sweep and number, listed, cancelled."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from shared.db import session_scope
from shared.models import Job, Sweep
from tests.web.test_api import assert_error

SWEEPS = "/api/v1/sweeps"
EXAMPLE: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "examples" / "sweep.json").read_text()
)
User = dict[str, Any]


def example(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE)
    body.update(changes)
    return body


def rows(url: str) -> tuple[int, int]:
    with session_scope(url) as s:
        return (s.scalar(select(func.count()).select_from(Sweep)) or 0,
                s.scalar(select(func.count()).select_from(Job)) or 0)  # fmt: skip


def test_the_example_sweep_is_accepted_with_its_first_trials(
    client: FlaskClient, alice: User, sqlite_url: str
) -> None:
    r = client.post(SWEEPS, json=EXAMPLE, headers=alice["headers"])
    assert r.status_code == 202, r.get_data(as_text=True)
    sweep = r.get_json()
    assert r.headers["Location"] == f"{SWEEPS}/{sweep['id']}"
    assert sweep["status"] == "running" and sweep["best"] is None
    assert sweep["trials"] == {"queued": 2}  # max_concurrent
    assert EXAMPLE["max_trials"] >= 12

    detail = client.get(f"{SWEEPS}/{sweep['id']}", headers=alice["headers"]).get_json()
    assert [t["trial"] for t in detail["tried"]] == [0, 1]
    lr = EXAMPLE["space"]["compile.optimizer.config.learning_rate"]
    for trial in detail["tried"]:
        assert set(trial["params"]) == set(EXAMPLE["space"])
        assert lr["low"] <= trial["params"]["compile.optimizer.config.learning_rate"] <= lr["high"]
        job = client.get(f"/api/v1/jobs/{trial['job_id']}", headers=alice["headers"]).get_json()
        assert job["sweep_id"] == sweep["id"] and job["trial"] == trial["trial"]
        assert job["status"] == "queued"
        # the trial's spec is the base spec with its values
        assert (
            job["spec"]["model"]["layers"][1]["config"]["units"]
            == (trial["params"]["model.layers[1].config.units"])
        )
        assert (
            job["spec"]["compile"]["optimizer"]["config"]["learning_rate"]
            == (trial["params"]["compile.optimizer.config.learning_rate"])
        )
    assert detail["tried"][0]["params"] != detail["tried"][1]["params"]
    listed = client.get(SWEEPS, headers=alice["headers"]).get_json()["sweeps"]
    assert [s["id"] for s in listed] == [sweep["id"]]


def _space(path: str, param: dict[str, Any]) -> dict[str, Any]:
    body = example()
    body["space"] = {path: param}
    return body


REFUSED = [
    ("unknown path", "model.layers[9].config.units", {"type": "int", "low": 8, "high": 64},
     "not in the spec"),
    ("not a path", "model..layers", {"type": "int", "low": 8, "high": 64}, "not a spec path"),
    ("inverted range", "model.layers[1].config.units", {"type": "int", "low": 64, "high": 8},
     "empty or inverted"),
    ("empty range", "fit.batch_size", {"type": "int", "low": 32, "high": 32}, "empty or inverted"),
    ("log range to 0", "compile.optimizer.config.learning_rate",
     {"type": "float", "low": 0.0, "high": 0.1, "log": True}, "above 0"),
    ("no choices", "fit.batch_size", {"type": "categorical", "choices": []}, "at least 1"),
    ("a value that makes no spec", "fit.batch_size", {"type": "categorical", "choices": [0, 32]},
     "fit.batch_size = 0"),
    ("a corner that cannot build", "model.layers[1].class_name",
     {"type": "categorical", "choices": ["Dense", "Conv2D"]}, "Conv2D"),
    ("into a model document", "model.json.config",
     {"type": "categorical", "choices": [1, 2]}, "not in the spec"),
]  # fmt: skip


@pytest.mark.parametrize(("why", "path", "param", "says"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_sweep_that_cannot_run_is_refused_naming_its_path(
    client: FlaskClient, alice: User, sqlite_url: str, why: str, path: str,
    param: dict[str, Any], says: str,
) -> None:  # fmt: skip
    before = rows(sqlite_url)
    r = client.post(SWEEPS, json=_space(path, param), headers=alice["headers"])
    error = assert_error(r, 422, "invalid_spec")
    fields = [e["field"] for e in error["details"]["errors"]]
    assert any(f.startswith(f"space.{path}") for f in fields), error
    assert says in json.dumps(error), error
    assert rows(sqlite_url) == before  # nothing recorded


def test_the_rest_of_a_sweep_is_checked_too(client: FlaskClient, alice: User) -> None:
    cases = [
        (example(objective={"metric": "val_loss", "direction": "up"}), "objective.direction"),
        (example(sampler="bayes"), "sampler"),
        (example(pruner={"type": "median", "n_startup_trials": -1}), "pruner.n_startup_trials"),
        (example(max_trials=0), "max_trials"),
        (example(max_trials=10**6), "max_trials"),
        (example(max_concurrent=0), "max_concurrent"),
        (example(spec={**EXAMPLE["spec"], "fit": {"epochs": 0}}), "spec.fit.epochs"),
        (example(sampler="grid"), "space.compile.optimizer.config.learning_rate"),  # no step
        ({**example(), "extra": 1}, "extra"),
    ]
    for body, field in cases:
        error = assert_error(client.post(SWEEPS, json=body, headers=alice["headers"]), 422,
                             "invalid_spec")  # fmt: skip
        fields = [e["field"] for e in error["details"]["errors"]]
        assert field in fields, (field, error)


def test_a_grid_sweep_tries_each_point_once(client: FlaskClient, alice: User) -> None:
    body = example(
        sampler="grid", max_trials=50, max_concurrent=4,
        space={"fit.batch_size": {"type": "categorical", "choices": [16, 32]},
               "model.layers[1].config.units": {"type": "int", "low": 16, "high": 48, "step": 16}},
    )  # fmt: skip
    sweep = client.post(SWEEPS, json=body, headers=alice["headers"]).get_json()
    assert sweep["max_trials"] == 6  # the grid's size, under max_trials
    detail = client.get(f"{SWEEPS}/{sweep['id']}", headers=alice["headers"]).get_json()
    tried = {tuple(sorted(t["params"].items())) for t in detail["tried"]}
    assert len(tried) == 4 == len(detail["tried"])


def test_sweeps_are_their_owners_and_cancel_ends_every_trial(
    client: FlaskClient, alice: User, bob: User
) -> None:
    sweep = client.post(SWEEPS, json=EXAMPLE, headers=alice["headers"]).get_json()
    assert_error(client.get(f"{SWEEPS}/{sweep['id']}", headers=bob["headers"]), 404, "not_found")
    assert_error(client.post(f"{SWEEPS}/{sweep['id']}/cancel", headers=bob["headers"]), 404,
                 "not_found")  # fmt: skip
    assert client.get(SWEEPS, headers=bob["headers"]).get_json() == {"sweeps": []}
    r = client.post(f"{SWEEPS}/{sweep['id']}/cancel", headers=alice["headers"])
    assert r.status_code == 200, r.get_data(as_text=True)
    done = r.get_json()
    assert done["status"] == "cancelled" and done["trials"] == {"cancelled": 2}
    assert done["finished_at"] is not None
    again = client.post(f"{SWEEPS}/{sweep['id']}/cancel", headers=alice["headers"])
    assert again.status_code == 200 and again.get_json()["trials"] == {"cancelled": 2}


def test_the_list_reads_every_sweeps_trials_in_the_same_few_queries(
    client: FlaskClient, alice: User, sqlite_url: str
) -> None:
    """However many sweeps a user has, listing them costs the same queries: their trials are
    read together, not one sweep at a time."""
    from sqlalchemy import event

    from shared.auth import authenticate
    from shared.db import get_engine
    from shared.settings import Settings
    from shared.sweeps import service
    from shared.sweeps.spec import SweepSpec

    def add_sweeps(n: int) -> None:
        with session_scope(sqlite_url) as s:
            user = authenticate(s, alice["token"])
            for _ in range(n):
                service.create(s, user, SweepSpec.model_validate(EXAMPLE), Settings())

    def listed() -> tuple[list[dict[str, Any]], int]:
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(str(args[2]))

        engine = get_engine(sqlite_url)
        event.listen(engine, "before_cursor_execute", count)
        try:
            r = client.get(SWEEPS, headers=alice["headers"])
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.get_json()["sweeps"], len(statements)

    add_sweeps(1)
    one, queries_for_one = listed()
    add_sweeps(4)
    five, queries_for_five = listed()
    assert len(one) == 1 and len(five) == 5
    assert all(s["trials"] == {"queued": 2} for s in five)
    assert queries_for_five == queries_for_one
