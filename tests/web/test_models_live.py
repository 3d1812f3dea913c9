"""The registry through the running service: a model's version predicts as its job does, and
an alias moved while clients predict through it continuously (the native path and TF
Serving's labels path) fails no request and answers with the new version within 1 s."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import numpy as np
import pytest
import requests

from tests.live import Live, LiveStacks
from tests.specs import quickstart
from tests.support import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
ONE = {
    "instances": json.loads((ROOT / "examples" / "three_digits.json").read_text())["instances"][:1]
}
# Two quickstart-sized models told apart by their answers: the same spec, another seed.
SPECS = (quickstart(epochs=1, validation_split=0.0),
         {**quickstart(epochs=1, validation_split=0.0), "seed": 7})  # fmt: skip
MOVE_WITHIN = 1.0  # seconds


def numbers(answer: Any) -> np.ndarray:
    """Every number of a JSON answer, in order."""
    if isinstance(answer, dict):
        return np.concatenate([numbers(v) for _, v in sorted(answer.items()) if _ != "job_id"])
    if isinstance(answer, list):
        return np.concatenate([numbers(v) for v in answer]) if answer else np.zeros(0)
    return np.array([float(answer)]) if isinstance(answer, (int, float)) else np.zeros(0)


@pytest.fixture(scope="module")
def live(live_stacks: LiveStacks) -> Live:
    """The shared service; alice's model "hot": versions 1 and 2 (two jobs), champion at 1."""
    live = live_stacks.get("sqlite")
    for job_id in live.trained(*SPECS):
        r = requests.post(f"{live.url}/api/v1/models/hot/versions", json={"job_id": job_id},
                          headers=live.alice)  # fmt: skip
        assert r.status_code == 201, r.text
    r = requests.put(f"{live.url}/api/v1/models/hot/aliases/champion", json={"version": 1},
                     headers=live.alice)  # fmt: skip
    assert r.status_code == 200, r.text
    return live


def _post(live: Live, path: str) -> requests.Response:
    return requests.post(f"{live.url}{path}", json=ONE, headers=live.alice, timeout=10)


def test_a_version_predicts_as_its_job(live: Live) -> None:
    versions = requests.get(f"{live.url}/api/v1/models/hot", headers=live.alice).json()["versions"]
    first, second = (v["job_id"] for v in versions[-2:])
    by_job = _post(live, f"/api/v1/jobs/{first}/predict").json()
    assert _post(live, "/api/v1/models/hot/versions/1/predict").json() == by_job
    assert _post(live, "/api/v1/models/hot/aliases/champion/predict").json() == by_job
    assert _post(live, "/api/v1/models/hot/predict").json()["job_id"] == second  # the latest
    r = _post(live, "/api/v1/models/hot/aliases/nobody/predict")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_an_alias_moves_under_load(live: Live) -> None:
    paths = {"native": "/api/v1/models/hot/aliases/champion/predict",
             "tfserving": "/v1/models/hot/labels/champion:predict"}  # fmt: skip
    expected = {
        (kind, v): numbers(_post(live, path.replace("aliases/champion", f"versions/{v}")
                                 .replace("labels/champion", f"versions/{v}")).json())
        for kind, path in paths.items() for v in (1, 2)
    }  # fmt: skip
    for kind in paths:
        assert not np.allclose(expected[kind, 1], expected[kind, 2], atol=1e-4)
    seen: list[tuple[str, float, float, int, int | None]] = []  # kind, sent, answered, status, v
    stop = threading.Event()

    def which(got: np.ndarray | None, kind: str) -> int | None:
        for v in (1, 2):
            want = expected[kind, v]
            if got is not None and got.shape == want.shape and np.allclose(got, want, atol=1e-5):
                return v
        return None

    def client(kind: str) -> None:
        with requests.Session() as session:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    r = session.post(f"{live.url}{paths[kind]}", json=ONE, headers=live.alice,
                                     timeout=10)  # fmt: skip
                    status = r.status_code
                except requests.RequestException:
                    status = 0
                got = numbers(r.json()) if status == 200 else None
                seen.append((kind, sent, time.monotonic(), status, which(got, kind)))

    threads = [threading.Thread(target=client, args=(kind,)) for kind in paths for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    r = requests.put(f"{live.url}/api/v1/models/hot/aliases/champion", json={"version": 2},
                     headers=live.alice)  # fmt: skip
    moved = time.monotonic()
    assert r.status_code == 200, r.text
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join()

    failed = [s for s in seen if s[3] != 200 or s[4] is None]
    assert not failed, f"{len(failed)} of {len(seen)} requests failed or matched no version"
    assert any(v == 1 for *_, v in seen) and len(seen) > 20
    for kind in paths:
        ours = [s for s in seen if s[0] == kind]
        first_new = min(answered for _, _, answered, _, v in ours if v == 2)
        late_old = [s for s in ours if s[4] == 1 and s[1] > moved]  # sent after the move
        print(f"{kind}: {len(ours)} requests, the new version {first_new - moved:.3f} s after "
              f"the move")  # fmt: skip
        assert first_new - moved <= MOVE_WITHIN
        if kind == "native":  # resolved afresh each request: nothing old once the move returned
            assert not late_old
        else:  # TF Serving's path keeps a resolved name for a moment
            assert all(sent - moved <= MOVE_WITHIN for _, sent, *_ in late_old)
