"""A batch prediction through the running service: mnist-sample's 10,000 test images, predicted
by chunk in the worker, give row by row what the native predict path answers; its events
stream tells each chunk; deleted, it is gone."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import requests

from shared.datasets.builtin import load
from tests.live import LiveStacks
from tests.specs import quickstart
from tests.support import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
SPEC = quickstart(epochs=1, validation_split=0.0)  # as test_models_live trains: shared
BATCHES = "/api/v1/batch-predictions"


def test_a_batch_prediction_of_the_test_images_matches_predict_row_by_row(
    live_stacks: LiveStacks,
) -> None:
    live = live_stacks.get("sqlite")
    (job_id,) = live.trained(SPEC)
    body = {"job_id": job_id, "dataset": {"name": "mnist-sample"}, "split": "test",
            "chunk_rows": 3000}  # fmt: skip
    r = requests.post(f"{live.url}{BATCHES}", json=body, headers=live.alice, timeout=30)
    assert r.status_code == 202, r.text
    url = f"{live.url}{BATCHES}/{r.json()['id']}"

    def finished() -> dict[str, object] | None:
        got = requests.get(url, headers=live.alice, timeout=10).json()
        return got if got["status"] in ("succeeded", "failed", "cancelled") else None

    done = wait_until(finished, 120, "the batch prediction to finish", every=0.25)
    assert done["status"] == "succeeded", done
    assert done["progress"] == {"chunks_done": 4, "chunks_total": 4, "percent": 100.0}
    assert done["bad_rows_count"] == 0 and done["rows"] == 10_000
    r = requests.get(f"{url}/result", headers=live.alice, timeout=60)
    assert r.status_code == 200, r.text
    x = load("mnist-sample").x_test
    assert x is not None
    with np.load(io.BytesIO(r.content), allow_pickle=False) as result:
        logits, classes = result["logits"], result["classes"]
        assert result["bad_rows"].shape == (0,)
    assert logits.shape == (10_000, 10) and classes.shape == (10_000,)
    for start in range(0, len(x), 5000):
        rows = x[start : start + 5000]
        r = requests.post(f"{live.url}/api/v1/jobs/{job_id}/predict",
                          json={"instances": rows.tolist()}, headers=live.alice,
                          timeout=120)  # fmt: skip
        assert r.status_code == 200, r.text
        native = r.json()["predictions"]
        np.testing.assert_allclose(logits[start : start + 5000],
                                   [p["logits"] for p in native], atol=1e-5)  # fmt: skip
        assert classes[start : start + 5000].tolist() == [p["class"] for p in native]

    # Its stream, read after the end: the status changes and one event per chunk, in order.
    r = requests.get(f"{url}/events", headers=live.alice, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    sent = [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data:")]
    chunks = [(e["chunk"], e["rows"], e["chunks_done"]) for e in sent if e["type"] == "chunk"]
    assert chunks == [(0, 3000, 1), (1, 3000, 2), (2, 3000, 3), (3, 1000, 4)]
    statuses = [e["status"] for e in sent if e["type"] == "status"]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded"
    assert [e["id"] for e in sent] == sorted(e["id"] for e in sent)

    # One still queued or running cannot be deleted; a finished one can, with its result.
    r = requests.post(f"{live.url}{BATCHES}", json=body, headers=live.alice, timeout=30)
    assert r.status_code == 202, r.text
    other = f"{live.url}{BATCHES}/{r.json()['id']}"
    r = requests.delete(other, headers=live.alice, timeout=30)
    assert r.status_code == 409 and "cancel it first" in r.json()["error"]["message"], r.text
    assert requests.post(f"{other}/cancel", headers=live.alice, timeout=30).ok
    assert requests.delete(url, headers=live.bob, timeout=30).status_code == 404  # not bob's
    assert requests.delete(url, headers=live.alice, timeout=30).status_code == 204
    assert requests.get(url, headers=live.alice, timeout=30).status_code == 404
    assert requests.get(f"{url}/result", headers=live.alice, timeout=30).status_code == 404
