"""`trainq rerun` of a quickstart job on the real service: the same seed, the same data, the same
per-epoch history (to 1e-6, on CPU)."""

from __future__ import annotations

import pytest
import requests

from tests.integration.conftest import Live
from tests.live import LiveStacks
from tests.specs import quickstart
from trainq.cli import main

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


@pytest.fixture(scope="module")
def live(live_stacks: LiveStacks) -> Live:
    """The shared service on SQLite (tests/live.py)."""
    return live_stacks.get("sqlite")


def test_trainq_rerun_repeats_a_quickstart_job_epoch_for_epoch(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = quickstart(epochs=2)
    del spec["seed"]  # the worker picks the seed, and the rerun must still repeat the job
    first = live.wait(live.submit(spec)["id"])
    assert first["status"] == "succeeded", first
    token = live.alice["Authorization"].split(" ", 1)[1]
    code = main(["rerun", first["id"], "--follow", "--url", live.url, "--token", token])
    out = capsys.readouterr().out
    assert code == 0, out
    again = live.get(out.splitlines()[0].strip())
    assert again["status"] == "succeeded" and again["id"] != first["id"], again
    assert again["spec"]["seed"] == first["provenance"]["seed"]
    ran, reran = first["provenance"], again["provenance"]
    assert (ran["seed_from"], reran["seed_from"]) == ("worker", "spec")
    # The same work: the same spec (the seed filled in), the same data, the same libraries.
    for key in ("seed", "spec_sha256", "dataset", "versions", "threads"):
        assert reran[key] == ran[key], key
    assert [row["epoch"] for row in again["history"]] == [1, 2]
    for before, after in zip(first["history"], again["history"], strict=True):
        assert before["metrics"].keys() == after["metrics"].keys()
        for name, value in before["metrics"].items():
            assert after["metrics"][name] == pytest.approx(value, abs=1e-6), name
    assert again["test_metrics"] == pytest.approx(first["test_metrics"], abs=1e-6)
    # Another user's job is not there for them to run again.
    theirs = requests.post(f"{live.url}/api/v1/jobs/{first['id']}/rerun", headers=live.bob)
    assert theirs.status_code == 404, theirs.text
