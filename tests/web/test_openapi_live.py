"""A bounded schemathesis run against the live API (real gunicorn): every response is as the
OpenAPI document says (status code, content type, headers, body), and no server error."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.live import api_alone
from web.openapi import SPEC_EXAMPLE

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

# Every check schemathesis has (its default when --checks is not given), with the exceptions
# below. On the command line, --checks would override these per-operation settings.
CONFIG = """
# A request that its schema admits may still be refused with 422 where the rule cannot be put
# in JSON Schema: a spec must build and fit its dataset (submitJob, and a sweep's paths and
# corners: submitSweep), an upload must be an .npz of the allowed arrays (uploadDataset), and
# only administrators may list with all=true (listJobs), a webhook's URL must be http(s) to a
# host that resolves (createWebhook); a spec checked without submitting it passes the same
# allow-lists (checkJobSpec); a batch prediction needs a trained model of the caller's and a
# dataset with its inputs (createBatchPrediction); a part of an upload must have bytes (an empty
# body is a valid octet-stream: putUploadPart). Those operations document the 422;
# positive_data_acceptance takes it there.
[[operations]]
include-operation-id = ["submitJob", "submitSweep", "uploadDataset", "listJobs", "createWebhook",
                        "checkJobSpec", "createBatchPrediction", "putUploadPart"]
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx",
]

# A job's TensorBoard logs exist once it has started training, and this API runs without a
# worker: a job just submitted has none yet, the documented 404, which
# ensure_resource_availability would take for a created resource gone missing.
[[operations]]
include-operation-id = "downloadTensorboard"
checks.ensure_resource_availability.enabled = false
"""


def _npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x_train=np.zeros((4, 3), "float32"), y_train=np.arange(4))
    return buffer.getvalue()


@pytest.fixture
def api(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str]]:
    # gunicorn refuses a request line over 4094 bytes with its own HTML 414 before the app sees
    # it; negative cases (a query parameter repeated hundreds of times) reach that limit of the
    # server, which the document does not describe: here it takes any length.
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--limit-request-line 0")
    with api_alone(tmp_path, redis_url, 5, "fuzz") as (service, token):
        # A dataset to list (no generated upload is an .npz); the document's example spec is
        # submitted by schemathesis itself, so there are jobs to list, read and cancel.
        r = requests.post(
            f"{service.url}/api/v1/datasets", files={"file": ("d.npz", _npz())},
            headers={"Authorization": f"Bearer {token}"}, timeout=30,
        )  # fmt: skip
        assert r.status_code == 201, r.text
        # The document's example spec once, so the submit check's process is warm before
        # schemathesis sends it with its 10 s timeout (a cold one loads Keras first).
        r = requests.post(f"{service.url}/api/v1/jobs", json=SPEC_EXAMPLE,
                          headers={"Authorization": f"Bearer {token}"}, timeout=180)  # fmt: skip
        assert r.status_code == 202, r.text
        yield service.url, token


def test_schemathesis_finds_every_response_as_documented(
    api: tuple[str, str], tmp_path: Path
) -> None:
    url, token = api
    st = Path(sys.executable).parent / "schemathesis"
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    result = subprocess.run(
        [str(st), "--config-file", str(config), "run", f"{url}/openapi.json",
         "--max-examples", "15", "--max-time", "45",
         # One worker: hypothesis's reprs, built on several threads at once, can break CPython
         # 3.11.7's ast ("AST constructor recursion depth mismatch"), a runtime error of the tool.
         "--workers", "1",
         # Reproducible: the generator can give up on making one layer of the layers list
         # ("Cannot generate an array with 1 demanded elements"), its limit, not the API's; a
         # seed alone still varied between runs, so the generation is deterministic too.
         "--seed", "20261130", "--generation-deterministic",
         # A queued job's stream stays open until the job ends, and nothing runs it here
         # (tests/web/test_events.py and tests/integration/test_events.py read the streams).
         "--exclude-path", "/api/v1/jobs/{job_id}/events",
         "--exclude-path", "/api/v1/sweeps/{sweep_id}/events",
         "--exclude-path", "/api/v1/batch-predictions/{batch_id}/events",
         "-H", f"Authorization: Bearer {token}", "--no-color"],
        capture_output=True, text=True, timeout=150, cwd=tmp_path,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]
    # Failures only: schemathesis's warnings ("Authentication failed: ... only 401") say which
    # operations it could not reach deeply, not that an answer was off its document.
    assert "Fuzzing" in out and "passed" in out, out[-6000:]
    assert not re.search(r"\b\d+ (failed|errored)\b|FAILURES|ERRORS", out), out[-6000:]
