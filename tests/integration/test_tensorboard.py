"""Each job writes TensorBoard logs; the archive opens with TensorBoard's own reader."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import Live
from tests.live import LiveStacks
from tests.specs import quickstart

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


@pytest.fixture(scope="module")
def live(live_stacks: LiveStacks) -> Live:
    """The shared service on SQLite (tests/live.py)."""
    return live_stacks.get("sqlite")


def test_archive_holds_the_epochs_for_tensorboard(live: Live, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    job = live.wait(live.submit(quickstart(epochs=3))["id"])
    assert job["status"] == "succeeded", job["error"]
    r = requests.get(f"{live.url}/api/v1/jobs/{job['id']}/tensorboard", headers=live.alice,
                     timeout=60)  # fmt: skip
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as tar:
        tar.extractall(tmp_path, filter="data")
    logdir = tmp_path / f"trainq-{job['id']}"
    for run, prefix in (("train", ""), ("validation", "val_")):
        acc = EventAccumulator(str(logdir / run), size_guidance={"tensors": 0})
        acc.Reload()
        tags = acc.Tags()["tensors"]
        assert "epoch_loss" in tags and "epoch_accuracy" in tags, tags
        losses = [e for e in acc.Tensors("epoch_loss")]
        assert [e.step for e in losses] == [0, 1, 2]
        recorded = [h["metrics"][f"{prefix}loss"] for h in job["history"]]
        values = [float(tensor_util.make_ndarray(e.tensor_proto)) for e in losses]
        assert values == pytest.approx(recorded, rel=1e-5)

    # `tensorboard --logdir` reads the folder as is (--inspect: what it would show, no server).
    board = Path(sys.executable).parent / "tensorboard"
    shown = subprocess.run([str(board), "--inspect", "--logdir", str(logdir)],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "epoch_loss" in shown.stdout + shown.stderr, shown.stdout + shown.stderr

    other = requests.get(f"{live.url}/api/v1/jobs/{job['id']}/tensorboard", headers=live.bob)
    assert other.status_code == 404
