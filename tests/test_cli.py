"""The `trainq` command and the Python SDK against a real service: live bar, table, predict."""

from __future__ import annotations

import datetime
import json
import os
import pty
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import trainq
from tests.integration.conftest import Live
from tests.live import LiveStacks
from tests.specs import quickstart
from tests.support import ROOT, wait_until

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
TRAINQ = str(Path(sys.executable).parent / "trainq")
DIGITS = json.loads((ROOT / "examples" / "three_digits.json").read_text())["instances"]


@pytest.fixture(scope="module")
def live(live_stacks: LiveStacks) -> Live:
    """The shared service on SQLite (tests/live.py)."""
    return live_stacks.get("sqlite")


def _token(live: Live) -> str:
    return live.alice["Authorization"].split(" ", 1)[1]


def _env(live: Live) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINQ_")}
    return {**env, "TRAINQ_URL": live.url, "TRAINQ_TOKEN": _token(live), "COLUMNS": "120"}


def _run_in_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run the command with a pseudo-terminal as its stdout, as a person would see it."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, stdout=follower, stderr=follower, env=env, cwd=ROOT)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the command ended and closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(60), b"".join(chunks).decode(errors="replace")


def _uncoloured(screen: str) -> str:
    """A terminal's screen without its colour and style codes."""
    return re.sub(r"\x1b\[[0-9;]*m", "", screen)


@pytest.fixture(scope="module")
def followed(live: Live, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    spec = tmp_path_factory.mktemp("spec") / "quickstart.json"
    name = f"CLI-follow-{uuid.uuid4().hex}"
    spec.write_text(json.dumps({**quickstart(epochs=3), "name": name}))
    code, screen = _run_in_terminal([TRAINQ, "submit", str(spec), "--follow"], _env(live))
    return {"code": code, "screen": screen, "job_id": screen.splitlines()[0].strip(), "name": name}


def test_follow_shows_a_live_bar_with_loss_accuracy_and_eta(followed: dict[str, Any]) -> None:
    screen = followed["screen"]
    assert followed["code"] == 0, screen
    assert "━" in screen  # the bar itself, redrawn as epochs finish
    for n in (1, 2, 3):
        assert f"{n}/3" in screen
    assert "loss=" in screen and "accuracy=" in screen
    assert "eta " in screen  # after the first epoch, an estimate of the time left
    assert "succeeded" in screen and "test: accuracy=" in screen


def test_follow_replays_a_finished_job_and_list_shows_a_table(
    live: Live, followed: dict[str, Any]
) -> None:
    env = _env(live)
    job_id = followed["job_id"]
    replay = subprocess.run([TRAINQ, "follow", job_id], env=env, capture_output=True, text=True)
    assert replay.returncode == 0, replay.stderr
    lines = replay.stdout.splitlines()
    assert [ln.split()[1] for ln in lines if ln.startswith("  epoch")] == ["1/3", "2/3", "3/3"]
    assert lines[-1].startswith("test: accuracy=")
    # In a terminal 80 columns wide the bar keeps its count; the metrics beside it are cut.
    code, screen = _run_in_terminal([TRAINQ, "follow", job_id], {**env, "COLUMNS": "80"})
    assert code == 0, screen
    moves = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "\n", _uncoloured(screen))  # cursor moves: ends
    bars = [ln for ln in moves.splitlines() if "━" in ln]
    assert any("3/3" in ln and "loss=" in ln for ln in bars), bars

    listed = subprocess.run([TRAINQ, "list"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()[:2]
    assert header.split()[:3] == ["ID", "STATUS", "PROGRESS"]
    assert row.split()[:2] == [job_id, "succeeded"] and "##########" in row
    # In a terminal 80 columns wide: the id and the status whole, one line a job.
    code, screen = _run_in_terminal([TRAINQ, "list"], {**env, "COLUMNS": "80"})
    assert code == 0, screen
    shown = _uncoloured(screen).splitlines()
    assert shown[0].split()[:4] == ["ID", "STATUS", "PROGRESS", "CREATED"], shown
    assert shown[1].split()[:2] == [job_id, "succeeded"] and max(map(len, shown)) <= 80, shown

    today = datetime.datetime.now(datetime.UTC).date()

    def ids(*filters: str) -> list[str]:
        out = subprocess.run([TRAINQ, "list", "--json", *filters], env=env, capture_output=True,
                             text=True)  # fmt: skip
        assert out.returncode == 0, out.stderr
        return [job["id"] for job in json.loads(out.stdout)["jobs"]]

    part = followed["name"].split("-")[-1].upper()  # a part of the name, in another case
    assert ids("--name", part, "--status", "succeeded", "--since", str(today)) == [job_id]
    assert ids("--name", part, "--until", str(today)) == []
    assert ids("--name", part, "--status", "queued") == []
    bad = subprocess.run([TRAINQ, "list", "--since", "last tuesday"], env=env,
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode != 0 and "created_after" in bad.stderr


def test_predict_from_npy_and_png_files(
    live: Live, followed: dict[str, Any], tmp_path: Path
) -> None:
    from PIL import Image

    np.save(tmp_path / "digits.npy", np.array(DIGITS, dtype=np.uint8))
    pngs = []
    for i, digit in enumerate(DIGITS):
        pngs.append(str(tmp_path / f"digit{i}.png"))
        Image.fromarray(np.array(digit, dtype=np.uint8), mode="L").save(pngs[-1])
    env = _env(live)
    for files in ([str(tmp_path / "digits.npy")], pngs):
        out = subprocess.run(
            [TRAINQ, "predict", followed["job_id"], *files, "--json"],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert [p["class"] for p in json.loads(out.stdout)] == [7, 2, 1]


def test_sdk_typed_errors_and_resumed_follow(live: Live, followed: dict[str, Any]) -> None:
    client = trainq.Client(live.url, _token(live))
    with pytest.raises(trainq.NotFound) as missing:
        client.get("0" * 32)
    assert missing.value.status == 404 and missing.value.code == "not_found"
    bad = quickstart()
    bad["fit"]["epochs"] = 0
    with pytest.raises(trainq.InvalidSpec) as invalid:
        client.submit(bad)
    assert invalid.value.details["errors"][0]["field"] == "fit.epochs"
    with pytest.raises(trainq.Unauthorized):
        trainq.Client(live.url, "tq_wrong").list()

    events = list(client.follow(followed["job_id"]))
    assert [e["id"] for e in events] == list(range(1, 7))
    resumed = list(client.follow(followed["job_id"], last_event_id=3))
    assert resumed == events[3:]


def test_sweep_submit_follow_shows_the_trials_live_and_ends_with_the_best(
    live: Live, tmp_path: Path
) -> None:
    body = json.loads((ROOT / "examples" / "sweep.json").read_text())
    body["spec"]["fit"]["epochs"] = 1
    body.update(max_trials=2, max_concurrent=2, pruner={"type": "none"}, sampler="random", seed=7)
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(body))
    code, screen = _run_in_terminal([TRAINQ, "sweep", "submit", str(path), "--follow"], _env(live))
    assert code == 0, screen
    sweep_id = screen.splitlines()[0].strip()
    client = trainq.Client(live.url, _token(live))
    sweep = client.get_sweep(sweep_id)
    assert sweep["status"] == "succeeded" and sweep["trials"] == {"succeeded": 2}
    best = sweep["best"]
    assert "TRIAL" in screen and "VAL_ACCURACY" in screen and "learning_rate" in screen
    last = screen.strip().splitlines()[-1]
    assert f"best: trial {best['trial']}, job {best['job_id']}, val_accuracy=" in last
    assert f"model.layers[1].config.units={best['params']['model.layers[1].config.units']}" in last

    # Its events replayed: both trials' epochs, then the sweep as it ended.
    events = list(client.follow_sweep(sweep_id))
    assert {e["trial"] for e in events if e["type"] == "epoch"} == {0, 1}
    assert events[-1]["type"] == "sweep" and events[-1]["sweep"]["best"] == best


def test_datasets_upload_prints_the_id_and_list_shows_a_table(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=np.zeros((6, 4), "float32"), y_train=np.arange(6) % 2)
    code, out, err = live.cli(capsys, "datasets", "upload", str(path), "--name", "mine-cli")
    assert code == 0, err
    dataset_id = out.strip()  # what a spec names: {"dataset": {"id": ...}}
    assert len(dataset_id) == 32 and "\n" not in dataset_id
    code, out, err = live.cli(capsys, "datasets", "list")
    assert code == 0, err
    assert out.split()[:7] == ["ID", "NAME", "ARRAYS", "TRAIN", "TEST", "SIZE", "CREATED"]
    row = next(line for line in out.splitlines() if line.startswith(f" {dataset_id}"))
    assert row.split()[1:5] == ["mine-cli", "x_train(6,", "4)", "y_train(6,)"], row
    code, out, _ = live.cli(capsys, "datasets", "list", "--json")
    assert code == 0 and dataset_id in [d["id"] for d in json.loads(out)["datasets"]]


def test_cancel_of_a_running_job_says_it_stops_after_its_batch(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = live.submit(quickstart(epochs=200, batch_size=16))["id"]
    wait_until(lambda: live.get(job_id)["status"] == "running", 300, "the job to start")
    code, out, err = live.cli(capsys, "cancel", job_id)
    assert code == 0, err
    assert out.strip() == (f"{job_id}: cancel requested; it stops after its current batch and "
                           "keeps the model of its last finished epoch, if any")  # fmt: skip
    assert live.wait(job_id)["status"] == "cancelled"
