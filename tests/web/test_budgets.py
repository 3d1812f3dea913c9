"""Budgets, not counts, checked before anything is built: the submissions that once grew an API
process by gigabytes are refused in well under a second, naming the layer, with nothing stored;
the quota and the rate come before any check, and a refused spec still counts."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.jobs import queries
from shared.ml import check_pool, submit_check
from shared.settings import Settings
from tests.specs import QUICKSTART
from tests.web.test_api import assert_error, submit, total_jobs
from web import create_app

User = dict[str, Any]


def _layers(*layers: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(QUICKSTART)
    first = {"class_name": "Flatten", "config": {"input_shape": [28, 28]}}
    spec["model"]["layers"] = [first, *layers, {"class_name": "Dense", "config": {"units": 10}}]
    return spec


def _deep_document(n: int) -> dict[str, Any]:
    """A Sequential to_json() document of n Dense layers of 4096 units."""
    layers = [
        {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
         "config": {"batch_shape": [None, 28, 28], "dtype": "float32", "name": "in"}},
        {"module": "keras.layers", "class_name": "Flatten", "registered_name": None,
         "config": {"name": "f"}},
    ] + [{"module": "keras.layers", "class_name": "Dense", "registered_name": None,
          "config": {"name": f"d{i}", "units": 4096}} for i in range(n)]  # fmt: skip
    spec = copy.deepcopy(QUICKSTART)
    spec["model"] = {"json": {"module": "keras", "class_name": "Sequential",
                              "registered_name": None,
                              "config": {"name": "deep", "layers": layers}}}  # fmt: skip
    return spec


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@pytest.fixture(scope="module", autouse=True)
def _warm(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The check processes loaded Keras before the first timed submit, as web.wsgi has them."""
    submit_check.warm_up(settings=Settings(var_dir=tmp_path_factory.mktemp("warm")))


PATHOLOGICAL = [
    pytest.param(_layers({"class_name": "Dense", "config": {"units": 10**6}}),
                 "model.layers[1]", "Dense", "parameters", id="dense-of-a-million-units"),
    pytest.param(_layers({"class_name": "Embedding", "config": {"input_dim": 10**9,
                                                                "output_dim": 8}},
                         {"class_name": "Flatten"}),
                 "model.layers[1]", "Embedding", "parameters", id="embedding-of-a-billion-rows"),
    pytest.param(_layers({"class_name": "Reshape", "config": {"target_shape": [28, 28, 1]}},
                         {"class_name": "Conv2D", "config": {"filters": 10**6, "kernel_size": 3}},
                         {"class_name": "Flatten"}),
                 "model.layers[2]", "Conv2D", "activations", id="conv2d-of-a-million-filters"),
    pytest.param(_deep_document(4990), "model.json.config.layers[32]", "Dense", "parameters",
                 id="document-of-4990-layers"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "field", "layer", "words"), PATHOLOGICAL)
def test_pathological_models_are_refused_at_once_naming_the_layer(
    client: FlaskClient, alice: User, bob: User, spec: dict[str, Any], field: str, layer: str,
    words: str,
) -> None:  # fmt: skip
    before = _rss_mb()
    started = time.monotonic()
    response = submit(client, alice, spec)
    took = time.monotonic() - started
    error = assert_error(response, 422, "invalid_spec")
    assert error["details"]["field"] == field, error
    assert error["details"]["errors"][0]["field"] == field
    assert layer in error["message"] and words in error["message"], error
    assert took < 2.5, took  # refused from the estimate: building any of these takes far longer
    assert _rss_mb() - before < 50
    assert total_jobs(client, alice) == 0
    # The service is as it was: healthy, and a plain spec is accepted.
    assert client.get("/healthz").status_code == 200
    assert submit(client, bob).status_code == 202


def test_ordinary_models_pass(client: FlaskClient, alice: User) -> None:
    spec = _layers({"class_name": "Dense", "config": {"units": 4096, "activation": "relu"}},
                   {"class_name": "Dense", "config": {"units": 4096}})  # fmt: skip
    assert submit(client, alice, spec).status_code == 202


def test_a_document_that_hides_its_size_is_refused_after_the_build(
    settings: Settings, alice: User
) -> None:
    """Declared shapes that lie pass the estimate; the built model is counted too."""
    from tests.web.test_hostile_specs import _document

    spec = _document(config={"name": "d", "units": 200_000})  # 784 x 200,000 weights
    dense = spec["model"]["json"]["config"]["layers"][2]
    dense["inbound_nodes"][0]["args"][0]["config"]["shape"] = [None, 1]  # declared: 1 x 200,000
    client = create_app(settings.model_copy(update={"max_model_params": 100_000_000})).test_client()
    error = assert_error(submit(client, alice, spec), 422, "invalid_spec")
    assert error["details"]["field"] == "model", error
    assert "the built model has 157," in error["message"], error
    assert total_jobs(client, alice) == 0


def test_a_submission_over_the_quota_never_reaches_the_check(
    settings: Settings, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    real = submit_check.check

    def counted(*args: Any) -> None:
        checked.append("check")
        real(*args)

    monkeypatch.setattr(queries.submit_check, "check", counted)
    asked: list[dict[str, Any]] = []
    monkeypatch.setattr(check_pool.CheckPool, "run", lambda self, r: asked.append(r) or {"ok": 1})
    client = create_app(settings.model_copy(update={"max_queued_jobs": 1})).test_client()
    spec = _layers({"class_name": "Dense", "config": {"units": 7}})
    assert submit(client, alice, spec).status_code == 202
    assert (len(checked), len(asked)) == (1, 1)
    huge = _layers({"class_name": "Dense", "config": {"units": 10**6}})
    assert_error(submit(client, alice, huge), 429, "quota_exceeded")
    assert (len(checked), len(asked)) == (1, 1)  # neither checked nor built


def test_a_spec_refused_for_its_content_counts_against_the_rate(
    settings: Settings, alice: User
) -> None:
    client = create_app(settings.model_copy(update={"submit_rate": 2})).test_client()
    huge = _layers({"class_name": "Dense", "config": {"units": 10**6}})
    assert_error(submit(client, alice, huge), 422, "invalid_spec")
    assert_error(submit(client, alice, huge), 422, "invalid_spec")  # the same: from the cache
    assert_error(submit(client, alice), 429, "rate_limited")
    assert total_jobs(client, alice) == 0


def test_an_identical_spec_is_checked_once(
    settings: Settings, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[dict[str, Any]] = []
    real = check_pool.CheckPool.run

    def counted(self: check_pool.CheckPool, request: dict[str, Any]) -> dict[str, Any]:
        asked.append(request)
        return real(self, request)

    monkeypatch.setattr(check_pool.CheckPool, "run", counted)
    client = create_app(settings).test_client()
    spec = _layers({"class_name": "Dense", "config": {"units": 33}})
    for name in ("one", "two", "three"):
        assert submit(client, alice, spec | {"name": name}).status_code == 202
    assert len(asked) == 1
    other = _layers({"class_name": "Dense", "config": {"units": 34}})
    assert submit(client, alice, other).status_code == 202
    assert len(asked) == 2


def test_a_check_process_over_its_memory_is_replaced_and_the_spec_refused(
    settings: Settings, alice: User
) -> None:
    """Within every budget, but above the check process's memory: ended, replaced, a clear 422."""
    limited = settings.model_copy(update={"check_processes": 1, "check_memory_mb": 1200})
    client = create_app(limited).test_client()
    big = _layers({"class_name": "Dense", "config": {"units": 400_000}})  # 1.25 GB of weights
    error = assert_error(submit(client, alice, big), 422, "invalid_spec")
    assert error["details"]["field"] == "model", error
    assert "1200 MB of memory" in error["message"], error
    assert total_jobs(client, alice) == 0
    assert submit(client, alice).status_code == 202  # a fresh process checks the next one


def test_a_check_over_its_time_is_ended_and_the_spec_refused(
    settings: Settings, alice: User
) -> None:
    limited = settings.model_copy(update={"check_processes": 1, "check_seconds": 0.05})
    client = create_app(limited).test_client()
    slow = _layers(*[{"class_name": "Dense", "config": {"units": 64}}] * 30)
    error = assert_error(submit(client, alice, slow), 422, "invalid_spec")
    assert "longer than 0.05 s" in error["message"], error
    assert total_jobs(client, alice) == 0


def test_one_users_burst_leaves_the_check_to_the_others(
    settings: Settings, alice: User, bob: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user has at most check_processes checks running; the next is 429 at once, and another
    user's submission is checked meanwhile."""
    started = threading.Event()

    def slow(self: check_pool.CheckPool, request: dict[str, Any]) -> dict[str, Any]:
        started.set()
        time.sleep(1.0)
        return {"ok": True}

    monkeypatch.setattr(check_pool.CheckPool, "run", slow)
    app = create_app(settings)
    first = threading.Thread(
        target=lambda: submit(app.test_client(), alice, _layers({"class_name": "Dense",
                                                                 "config": {"units": 21}})),
    )  # fmt: skip
    first.start()
    assert started.wait(10)
    again = submit(app.test_client(), alice, _layers({"class_name": "Dense",
                                                      "config": {"units": 22}}))  # fmt: skip
    assert_error(again, 429, "rate_limited")
    other = submit(app.test_client(), bob, _layers({"class_name": "Dense",
                                                    "config": {"units": 23}}))  # fmt: skip
    assert other.status_code == 202
    first.join(10)
