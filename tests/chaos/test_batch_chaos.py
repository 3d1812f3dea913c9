"""A batch prediction whose worker process is killed for real mid-way: another process goes on
from the chunks recorded, predicting none of them again, and the result is whole."""

from __future__ import annotations

import io
import os
import re
import signal

import numpy as np
import pytest
import requests

from shared.datasets.builtin import load
from shared.models import JobStatus
from tests.chaos.conftest import Stack
from tests.specs import quickstart

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
BATCHES = "/api/v1/batch-predictions"
PREDICTED = re.compile(r"job_id=(\w+) chunk=(\d+) rows=\d+ attempt=(\d+) predicted")


def test_a_batch_prediction_killed_mid_way_resumes_without_redoing_its_chunks(
    stack: Stack,
) -> None:
    stack.start_web()
    stack.start_worker()
    stack.start_periodic()
    model_job = stack.submit(quickstart(epochs=1, validation_split=0.0))
    assert stack.wait_finished(model_job).status == JobStatus.succeeded
    # Both splits of mnist-sample, 15,000 rows, in 150 chunks of 100.
    body = {"job_id": model_job, "dataset": {"name": "mnist-sample"}, "chunk_rows": 100}
    r = requests.post(f"{stack.url}{BATCHES}", json=body, headers=stack.headers, timeout=30)
    assert r.status_code == 202, r.text
    batch_id = r.json()["id"]
    job = stack.wait(lambda: (j := stack.job(batch_id)).epochs_done >= 3 and j, "3 chunks")
    child = int(str(job.worker).rsplit(":", 1)[1])
    os.kill(child, signal.SIGKILL)  # the process predicting, mid-way
    killed_at = stack.job(batch_id).epochs_done
    assert 3 <= killed_at < 150

    job = stack.wait_finished(batch_id)
    assert job.status == JobStatus.succeeded, job.error
    assert (job.attempt, job.epochs_done, job.epochs_total) == (2, 150, 150)
    log = (stack.var_dir / "worker.log").read_text(errors="replace")
    predicted = [(int(c), int(a)) for j, c, a in PREDICTED.findall(log) if j == batch_id]
    assert f"job_id={batch_id} resumed: {killed_at} of 150 chunks done before" in log
    first = sorted(c for c, a in predicted if a == 1)
    second = sorted(c for c, a in predicted if a == 2)
    assert first == list(range(len(first))) and len(first) in (killed_at - 1, killed_at)
    # The second attempt predicts only the chunks not recorded: none of the first's again.
    assert second == list(range(killed_at, 150))

    # The result holds every row once, in order: what predict answers for them.
    r = requests.get(f"{stack.url}{BATCHES}/{batch_id}/result", headers=stack.headers, timeout=60)
    assert r.status_code == 200, r.text
    with np.load(io.BytesIO(r.content), allow_pickle=False) as result:
        logits = result["logits"]
    assert logits.shape == (15_000, 10)
    data = load("mnist-sample")
    assert data.x_test is not None
    rows = np.concatenate([data.x_train, data.x_test])[::500]  # every 500th row, from both splits
    r = requests.post(f"{stack.url}/api/v1/jobs/{model_job}/predict",
                      json={"instances": rows.tolist()}, headers=stack.headers,
                      timeout=60)  # fmt: skip
    assert r.status_code == 200, r.text
    native = [p["logits"] for p in r.json()["predictions"]]
    np.testing.assert_allclose(logits[::500], native, atol=1e-5)
    assert stack.unfinished() == []
