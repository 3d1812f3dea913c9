"""`trainq batch ...` and the SDK's batch prediction calls against the running service, with the
model the batch prediction's live test trains (shared per stack): submit and follow to the end,
status, list, download the result, delete; errors as the CLI's one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.live import Live, LiveStacks
from tests.web.test_batch_predict_live import SPEC

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


@pytest.fixture(scope="module")
def live(live_stacks: LiveStacks) -> Live:
    return live_stacks.get("sqlite")


def test_submit_follow_download_delete(
    live: Live, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (job_id,) = live.trained(SPEC)
    code, out, err = live.cli(capsys, "batch", "submit", "--job", job_id, "--dataset",
                         "mnist-sample", "--split", "test", "--chunk-rows", "2500",
                         "--follow")  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    batch_id = lines[0]
    assert f"{batch_id}: succeeded" in lines
    assert [line.strip() for line in lines if "chunk " in line] == [
        f"chunk {n}/4 (2500 rows)" for n in range(1, 5)
    ]  # one line per chunk, in order (the output is not a terminal: no bar)
    assert lines[-1] == f"10000 rows predicted, 0 bad: trainq batch download {batch_id} FILE"

    code, out, _ = live.cli(capsys, "batch", "status", batch_id)
    assert code == 0 and out.startswith(f"{batch_id}: succeeded, chunk 4 of 4 (10000 rows")
    code, out, _ = live.cli(capsys, "batch", "list", "--json")
    assert batch_id in [b["id"] for b in json.loads(out)]
    code, out, _ = live.cli(capsys, "batch", "list")
    row = next(line.split() for line in out.splitlines() if line.split()[:1] == [batch_id])
    assert row[1:5] == ["succeeded", "4/4", "10000", "0"]

    target = tmp_path / "predictions.npz"
    code, out, _ = live.cli(capsys, "batch", "download", batch_id, str(target))
    assert (code, out.strip()) == (0, str(target))
    with np.load(target, allow_pickle=False) as result:
        assert result["logits"].shape == (10_000, 10) and result["classes"].shape == (10_000,)

    code, _, _ = live.cli(capsys, "batch", "delete", batch_id)
    assert code == 0
    code, _, err = live.cli(capsys, "batch", "status", batch_id)
    assert code == 2 and "(404 not_found)" in err
    code, _, err = live.cli(capsys, "batch", "submit", "--job", job_id, "--dataset", "nope")
    assert code == 2 and "(4" in err and "nope" in err
