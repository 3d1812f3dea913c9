"""`trainq sweep ...` and the SDK's sweep calls against a real API (no worker: trials stay
queued until the sweep is cancelled, which ends it and its event stream)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

import trainq
from tests.live import api_alone
from tests.support import ROOT
from trainq import cli, sweeps

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]
EXAMPLE = ROOT / "examples" / "sweep.json"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[list[str]]:
    """gunicorn alone on a fresh database; the CLI's --url and --token for its user."""
    with api_alone(tmp_path_factory.mktemp("sweeps"), redis_url, 12, "sue") as (service, token):
        yield ["--url", service.url, "--token", token]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The command in this process: exit code, stdout, stderr."""
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def sdk(api: list[str]) -> trainq.Client:
    return trainq.Client(api[1], api[3])


def test_submit_status_list_cancel_and_follow(
    api: list[str], sdk: trainq.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "sweep", "submit", str(EXAMPLE), *api)
    assert code == 0, err
    sweep_id = out.strip()
    assert sweep_id and "\n" not in sweep_id

    code, out, err = run(capsys, "sweep", "status", sweep_id, *api)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{sweep_id}  quickstart sweep  running  trials: 2 queued")
    header = lines[1].split()
    assert header[:4] == ["TRIAL", "STATUS", "EPOCHS", "VAL_ACCURACY"]
    assert header[4:] == ["learning_rate", "units", "rate", "JOB"]  # the paths' last keys
    detail = sdk.get_sweep(sweep_id)
    for trial, line in zip(detail["tried"], lines[2:4], strict=True):
        assert line.split()[:3] == [str(trial["trial"]), "queued", "0/4"]
        assert line.split()[-1] == trial["job_id"]
        assert str(trial["params"]["model.layers[1].config.units"]) in line.split()
    # In a terminal 80 columns wide only the job's id is cut short: the rest are whole.
    narrow = Console(width=80, record=True, file=io.StringIO())
    narrow.print(sweeps.table(detail))
    shown = narrow.export_text().splitlines()
    assert shown[0].split() == [*header[:-1], "JOB"] and max(map(len, shown)) <= 80
    for trial, line in zip(detail["tried"], shown[1:3], strict=True):
        units = trial["params"]["model.layers[1].config.units"]
        assert line.split()[:3] == [str(trial["trial"]), "queued", "0/4"]
        assert str(units) in line.split() and trial["job_id"][:4] in line
    assert lines[-1] == "best: none yet (no trial has finished with val_accuracy)"

    code, out, _ = run(capsys, "sweep", "status", sweep_id, "--json", *api)
    assert code == 0 and json.loads(out)["tried"] == detail["tried"]

    code, out, _ = run(capsys, "sweep", "list", *api)
    assert code == 0 and out.split()[:6] == ["ID", "STATUS", "TRIALS", "BEST", "CREATED", "NAME"]
    assert out.splitlines()[1].split()[:3] == [sweep_id, "running", "0/12"]
    assert [s["id"] for s in sdk.list_sweeps()["sweeps"]] == [sweep_id]

    code, out, err = run(capsys, "sweep", "cancel", sweep_id, *api)
    assert code == 0, err
    assert out.strip() == f"{sweep_id}: cancelled"  # only queued trials: it ends at once
    assert sdk.get_sweep(sweep_id)["trials"] == {"cancelled": 2}

    # The SDK's stream: every trial's events, then the sweep as it ended.
    events = list(sdk.follow_sweep(sweep_id))
    assert events[-1]["type"] == "sweep"
    assert events[-1]["sweep"]["id"] == sweep_id
    assert events[-1]["sweep"]["status"] == "cancelled"
    trial_events = events[:-1]
    jobs = {t["trial"]: t["job_id"] for t in detail["tried"]}
    assert {(e["trial"], e["job_id"]) for e in trial_events} == set(jobs.items())
    assert {(e["trial"], e.get("status")) for e in trial_events if e["type"] == "status"} >= {
        (0, "cancelled"), (1, "cancelled"),
    }  # fmt: skip
    ids = [e["id"] for e in trial_events]
    assert ids == sorted(set(ids))
    # Resumed after the first event: the rest, none twice.
    resumed = list(sdk.follow_sweep(sweep_id, last_event_id=ids[0]))
    assert [e["id"] for e in resumed[:-1]] == ids[1:] and resumed[-1]["type"] == "sweep"

    # Following an ended sweep: its table and its best (none), exit 1 as it did not succeed.
    code, out, err = run(capsys, "sweep", "follow", sweep_id, *api)
    assert code == 1 and "sweep cancelled" in err
    assert "trial 0 (" in out and ": cancelled" in out
    assert out.splitlines()[-1].startswith("best: none yet")


def test_errors_are_printed_as_the_api_says(
    api: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "sweep", "status", "no-such-sweep", *api)
    assert code == 2 and err.startswith("error: ") and "(404 not_found)" in err

    body: dict[str, Any] = json.loads(EXAMPLE.read_text())
    body["space"] = {"model.layers[9].config.units": {"type": "int", "low": 8, "high": 64}}
    import yaml

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(body))  # YAML is read like JSON
    code, out, err = run(capsys, "sweep", "submit", str(bad), *api)
    assert code == 2 and not out
    assert "model.layers[9]" in err and "(422 invalid_spec)" in err
