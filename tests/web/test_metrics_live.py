"""/metrics under gunicorn with several workers adds up every worker's counts."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from shared.commands.database import migrate
from tests.conftest import make_user
from tests.support import ROOT, free_port, service_env, wait_until

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


def _count(url: str, labels: dict[str, str]) -> float:
    text = requests.get(url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "trainq_http_requests_total" and s.labels == labels:
                return s.value
    return 0.0


def test_request_counts_add_up_across_gunicorn_workers(tmp_path: Path, redis_url: str) -> None:
    db_url = f"sqlite:///{tmp_path / 'trainq.db'}"
    migrate(db_url)
    _, token = make_user(db_url, "alice")
    (tmp_path / "prom").mkdir()
    env = service_env(db_url, redis_url, tmp_path, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "web.log").open("wb")
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "web.wsgi:app", "--bind", f"127.0.0.1:{port}",
         "--worker-class", "gthread", "--workers", "3", "--threads", "2",
         "--no-control-socket"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_until(lambda: _up(url), 60, "the API")
        headers = {"Authorization": f"Bearer {token}", "Connection": "close"}

        def ask(_: int) -> int:  # a new connection each time: the workers share them out
            return requests.get(f"{url}/api/v1/jobs/nope", headers=headers, timeout=10).status_code

        sent = 0
        prom = tmp_path / "prom"
        with ThreadPoolExecutor(6) as pool:
            # Workers still booting take nothing: ask, six at a time, until several have answered.
            while sent < 30 or (len(list(prom.glob("counter_*.db"))) < 2 and sent < 600):
                assert set(pool.map(ask, range(6))) == {404}
                sent += 6
        pids = set(p.name for p in prom.glob("counter_*.db"))
        assert len(pids) >= 2, pids  # the requests really were spread over several workers
        labels = {"method": "GET", "route": "/api/v1/jobs/<job_id>", "status": "404"}
        for _ in range(5):  # whichever worker answers the scrape, it reports all of them
            assert _count(url, labels) == sent
    finally:
        web.terminate()
        web.wait(30)
        log.close()


def _up(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=5).status_code == 200
    except requests.RequestException:
        return False
