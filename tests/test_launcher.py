"""`trainq up` and the CLI, as a new user runs them: the README's quickstart, for real."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.specs import quickstart
from tests.support import ROOT, free_port, wait_until

pytestmark = pytest.mark.timeout(600)
TRAINQ = str(Path(sys.executable).parent / "trainq")


def _env(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINQ_")}
    env.update(TRAINQ_VAR_DIR=str(var_dir), TF_CPP_MIN_LOG_LEVEL="2", **extra)
    return env


def _answers(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=10).status_code == 200
    except requests.RequestException:
        return False


def _redis_answers(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=1).ping())
    except redis.ConnectionError:
        return False


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _training_goes_first(up: int) -> None:
    """The API runs at the lowest CPU priority (SCHED_IDLE, niceness 19), also where the kernel
    groups each session's processes (its session is then lowered: niceness counts only within)."""
    names = {c: Path(f"/proc/{c}/cmdline").read_bytes().split(b"\0") for c in _children(up)}
    web = next(c for c, cmd in names.items() if b"gunicorn" in cmd)
    worker = next(c for c, cmd in names.items() if b"train@%h" in cmd)
    for pid in (web, *_children(web)):  # the master and its workers
        assert os.getpriority(os.PRIO_PROCESS, pid) == 19
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE
    assert os.getpriority(os.PRIO_PROCESS, worker) == 0
    assert os.sched_getscheduler(worker) == os.SCHED_OTHER
    group = Path(f"/proc/{web}/autogroup")
    if group.exists():
        assert group.read_text().split()[-1] == "19"
        assert Path(f"/proc/{worker}/autogroup").read_text().split()[-1] == "0"


@pytest.mark.slow
@pytest.mark.serial  # reads CPU priorities; its API runs at SCHED_IDLE, which busy cores starve
def test_up_runs_the_readme_quickstart_and_stops_cleanly(tmp_path: Path) -> None:
    port, redis_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    env = _env(
        tmp_path, TRAINQ_PORT=str(port), TRAINQ_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0"
    )
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen([TRAINQ, "up"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _answers(url), 90, "trainq up to serve")
        _training_goes_first(up.pid)
        output = (tmp_path / "up.log").read_text()
        assert "starting redis-server" in output  # none answered, so it started its own
        assert "token is saved in" in output
        token_file = tmp_path / "token"
        assert token_file.read_text().startswith("tq_")

        cli_env = {**env, "TRAINQ_URL": url}

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [TRAINQ, *args], cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=300
            )

        submitted = cli("submit", "examples/quickstart.json", "--follow")
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        job_id = submitted.stdout.splitlines()[0].strip()
        assert "epoch 5/5" in submitted.stdout and "succeeded" in submitted.stdout
        assert "test: accuracy=" in submitted.stdout

        predicted = cli("predict", job_id, "examples/three_digits.json", "--json")
        assert predicted.returncode == 0, predicted.stderr
        assert [p["class"] for p in json.loads(predicted.stdout)] == [7, 2, 1]

        for fmt in ("keras", "h5"):
            out = tmp_path / f"model.{fmt}"
            got = cli("download", job_id, "--format", fmt, "-o", str(out))
            assert got.returncode == 0 and out.stat().st_size > 100_000, got.stderr

        listed = cli("list")
        assert job_id in listed.stdout and "succeeded" in listed.stdout

        bad = quickstart(epochs=1)
        bad["model"]["layers"][1]["config"]["units"] = -3
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        rejected = cli("submit", str(tmp_path / "bad.json"), "--follow")  # checked at submit
        assert rejected.returncode == 2
        assert "model.layers[1].config.units" in rejected.stderr and "422" in rejected.stderr

        failing = quickstart(epochs=1, validation_split=0.0)  # a label only training trips on
        failing["fit"]["validation_data"] = {"x": [[[0] * 28] * 28], "y": [99]}
        (tmp_path / "failing.json").write_text(json.dumps(failing))
        failed = cli("submit", str(tmp_path / "failing.json"), "--follow")
        assert failed.returncode == 1
        assert "job failed" in failed.stderr and "InvalidArgumentError" in failed.stderr

        refused = cli("submit", str(tmp_path / "bad.json"), "--token", "tq_not-a-token")
        assert refused.returncode == 2 and "401" in refused.stderr

        health = requests.get(url + "/healthz", timeout=10).json()
        assert str(health["periodic"]).startswith("ok: last round"), health
        output = (tmp_path / "up.log").read_text()
        assert f"Task trainq.train[{job_id}] received" in output  # a job's lines are kept
        assert re.search(r"INFO/[\w-]+\] Epoch 5/5", output), output[-3000:]  # not warnings
        assert "considered legacy" not in output  # Keras's word on the .h5 saved on purpose
        for said in ("Sending due task", "trainq.reconcile[", "trainq.webhooks.deliver["):
            assert said not in output, said  # the periodic rounds' would bury them
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(90)
        log.close()
    assert code == 0, (tmp_path / "up.log").read_text()[-3000:]
    assert not _answers(url)
    assert not _redis_answers(redis_port)  # the Redis it started is stopped too


@pytest.mark.serial  # reads CPU priorities and autogroups
@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="no autogroup here")
def test_only_a_session_leader_lowers_its_autogroup() -> None:
    from shared.commands.up import lower_priority

    # A process in the kernel's default group (one whose session never left init's, as some
    # CI runners start their jobs) reads an empty file; a session of its own gets a group.
    show = [sys.executable, "-c", "print(open('/proc/self/autogroup').read(), end='')"]
    ours = Path("/proc/self/autogroup").read_text()
    leader = subprocess.run(show, preexec_fn=lower_priority(19, True), start_new_session=True,
                            capture_output=True, text=True, check=True)  # fmt: skip
    member = subprocess.run(show, preexec_fn=lower_priority(19, True),
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert leader.stdout.endswith(" nice 19\n")  # as `trainq up` starts the API
    assert Path("/proc/self/autogroup").read_text() == ours  # the caller's session is untouched
    assert member.stdout == ours  # the same group, at the same nice


def test_up_says_what_to_install_without_redis(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        TRAINQ_PORT=str(free_port()),
        TRAINQ_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        PATH=str(Path(sys.executable).parent),  # no redis-server on this PATH
    )
    result = subprocess.run(
        [TRAINQ, "up"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "redis-server is not installed" in result.stderr
    assert "apt-get install redis-server" in result.stderr
